#include "launch/sqlite_db.h"

#include <sqlite3.h>

#include "core/error.h"
#include "core/log.h"

namespace rwkv::launch {

SqliteDb::SqliteDb(const std::string& path) : path_(path) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    const std::string why = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    RWKV_FAIL(path, ": cannot open the controller database: ", why,
              "\n  ---> HINT: pass a writable --db path (its directory must exist)");
  }
  sqlite3_busy_timeout(db_, 5000);
  // WAL: a crash never corrupts the file and readers do not block the writer.
  // synchronous=NORMAL in WAL mode survives a crash of this process; after a
  // power loss the last transactions may be lost, and docs/controller.md says
  // how the controller reconciles that with the COMMITTED markers on disk.
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
}

SqliteDb::~SqliteDb() {
  if (db_ != nullptr) sqlite3_close(db_);
}

void SqliteDb::fail(const std::string& what, const std::string& sql) {
  RWKV_FAIL(path_, ": SQLite ", what, " failed: ", sqlite3_errmsg(db_), " (in: ", sql.substr(0, 120),
            ")\n  ---> HINT: is the disk full, or is the database from a newer rwkv-controller?");
}

void SqliteDb::exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string why = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    RWKV_FAIL(path_, ": SQLite failed: ", why, " (in: ", sql.substr(0, 120), ")");
  }
}

SqliteStmt::SqliteStmt(SqliteDb& db, const std::string& sql) : db_(db), sql_(sql) {
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) db_.fail("prepare", sql_);
}

SqliteStmt::~SqliteStmt() { sqlite3_finalize(stmt_); }

SqliteStmt& SqliteStmt::bind(int index, int64_t value) {
  if (sqlite3_bind_int64(stmt_, index, value) != SQLITE_OK) db_.fail("bind", sql_);
  return *this;
}

SqliteStmt& SqliteStmt::bind(int index, double value) {
  if (sqlite3_bind_double(stmt_, index, value) != SQLITE_OK) db_.fail("bind", sql_);
  return *this;
}

SqliteStmt& SqliteStmt::bind(int index, const std::string& value) {
  if (sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT) != SQLITE_OK)
    db_.fail("bind", sql_);
  return *this;
}

bool SqliteStmt::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail("step", sql_);
}

void SqliteStmt::run() {
  while (step()) {
  }
  sqlite3_reset(stmt_);
}

int64_t SqliteStmt::col_int(int index) const { return sqlite3_column_int64(stmt_, index); }
double SqliteStmt::col_double(int index) const { return sqlite3_column_double(stmt_, index); }
std::string SqliteStmt::col_text(int index) const {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  return text == nullptr ? "" : std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, index)));
}

SqliteTransaction::SqliteTransaction(SqliteDb& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

SqliteTransaction::~SqliteTransaction() {
  if (done_) return;
  try {
    db_.exec("ROLLBACK");
  } catch (const Error& e) {
    log_error("rollback failed: ", e.what());
  }
}

void SqliteTransaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace rwkv::launch
