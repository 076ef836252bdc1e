// The communicators of a 3-D layout: one per group kind this rank belongs to,
// split from a parent communicator (MPI_COMM_WORLD) after the Topology.
//
//   ProcessGroups groups(cfg.dp, cfg.tp, cfg.pp);   // collective over the world
//   groups.dp().all_reduce_sum(grad);               // the data-parallel replicas of my shard
//   groups.pp().send(activations, groups.topology().pp_rank() + 1);
//
// MPI_Comm_split with colour = Topology::group_index (the coordinates the
// group does not vary over) and key = Topology::group_rank, so group rank i is
// the i-th entry of Topology::group_ranks. See topology.h for worked examples.
#pragma once

#include <mpi.h>

#include <memory>

#include "parallel/mpi_comm.h"
#include "parallel/topology.h"

namespace rwkv::parallel {

class ProcessGroups {
 public:
  // Collective over `parent`: every rank calls it with the same layout. A
  // layout that does not match the parent's size throws the same rwkv::Error
  // on every rank before any communicator is created (see run_ranks).
  ProcessGroups(int dp, int tp, int pp, MPI_Comm parent = MPI_COMM_WORLD);

  const Topology& topology() const { return topology_; }
  MpiCommunicator& world() { return *world_; }
  MpiCommunicator& group(GroupKind kind);
  MpiCommunicator& tp() { return group(GroupKind::Tp); }
  MpiCommunicator& dp() { return group(GroupKind::Dp); }
  MpiCommunicator& pp() { return group(GroupKind::Pp); }
  MpiCommunicator& mp() { return group(GroupKind::ModelParallel); }  // tp x pp: one model replica

 private:
  static Topology make_topology(int dp, int tp, int pp, MPI_Comm parent);

  Topology topology_;
  std::unique_ptr<MpiCommunicator> world_;
  std::unique_ptr<MpiCommunicator> groups_[4];  // indexed by GroupKind
};

}  // namespace rwkv::parallel
