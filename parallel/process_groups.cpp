#include "parallel/process_groups.h"

#include "parallel/mpi_runtime.h"

namespace rwkv::parallel {

Topology ProcessGroups::make_topology(int dp, int tp, int pp, MPI_Comm parent) {
  int world = 0, rank = 0;
  check_mpi(MPI_Comm_size(parent, &world), "MPI_Comm_size");
  check_mpi(MPI_Comm_rank(parent, &rank), "MPI_Comm_rank");
  return Topology(dp, tp, pp, world, rank);  // validates: the same verdict on every rank
}

ProcessGroups::ProcessGroups(int dp, int tp, int pp, MPI_Comm parent) : topology_(make_topology(dp, tp, pp, parent)) {
  MPI_Comm world_copy;
  check_mpi(MPI_Comm_dup(parent, &world_copy), "MPI_Comm_dup");
  world_ = std::make_unique<MpiCommunicator>(world_copy, "world", true);
  for (GroupKind kind : {GroupKind::Tp, GroupKind::Dp, GroupKind::Pp, GroupKind::ModelParallel}) {
    MPI_Comm comm;
    check_mpi(MPI_Comm_split(parent, topology_.group_index(kind), topology_.group_rank(kind), &comm), "MPI_Comm_split");
    auto group = std::make_unique<MpiCommunicator>(comm, group_name(kind), true);
    // The split must reproduce the Topology's arithmetic exactly.
    RWKV_CHECK(group->size() == topology_.group_size(kind) && group->rank() == topology_.group_rank(kind),
               "ProcessGroups: the ", group_name(kind), " group of ", topology_.str(), " has size ", group->size(),
               " and rank ", group->rank(), ", expected ", topology_.group_size(kind), " and ",
               topology_.group_rank(kind));
    groups_[static_cast<int>(kind)] = std::move(group);
  }
}

MpiCommunicator& ProcessGroups::group(GroupKind kind) { return *groups_[static_cast<int>(kind)]; }

}  // namespace rwkv::parallel
