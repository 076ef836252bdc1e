// A thin RAII layer over SQLite: a connection, prepared statements with
// typed binds and columns, transactions. Every failure throws rwkv::Error
// naming the database file and the statement.
#pragma once

#include <cstdint>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace rwkv::launch {

class SqliteDb;

class SqliteStmt {
 public:
  SqliteStmt(SqliteDb& db, const std::string& sql);
  ~SqliteStmt();
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;

  // Binds are 1-based, like SQLite's.
  SqliteStmt& bind(int index, int64_t value);
  SqliteStmt& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  SqliteStmt& bind(int index, double value);
  SqliteStmt& bind(int index, const std::string& value);
  SqliteStmt& bind(int index, const char* value) { return bind(index, std::string(value)); }
  // true while there is a row to read; false at the end.
  bool step();
  // Runs a statement that returns no rows.
  void run();
  // Columns are 0-based, like SQLite's.
  int64_t col_int(int index) const;
  double col_double(int index) const;
  std::string col_text(int index) const;

 private:
  SqliteDb& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

class SqliteDb {
 public:
  // Opens (creating) the database file; WAL journal, foreign keys on.
  explicit SqliteDb(const std::string& path);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  void exec(const std::string& sql);  // one or more statements, no results
  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }
  [[noreturn]] void fail(const std::string& what, const std::string& sql);

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back if the scope exits by an exception.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(SqliteDb& db);
  ~SqliteTransaction();
  void commit();

 private:
  SqliteDb& db_;
  bool done_ = false;
};

}  // namespace rwkv::launch
