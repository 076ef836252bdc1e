#!/usr/bin/env python3
"""A gRPC client that is not ours reads the controller's status.

Python grpcio (Debian: python3-grpcio, python3-protobuf) with stubs that
protoc and grpc_python_plugin generate from launch/controller.proto right
here. rwkv-controller runs a one-rank job of the fake trainer to completion;
then this client calls Admin.Status, Metrics and Checkpoints with the job
token and checks the fields, and checks that a wrong token and a command
with the job token are refused. Exit 77 (ctest: skipped) when grpcio or the
plugin is missing.

  python_status_client.py --controller-bin B --fake-trainer-bin F --source-dir S \
      --protoc P --grpc-python-plugin G
"""
import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
JOB = "py-status"
STEPS = 12


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def fail(why):
    print("FAIL: " + why)
    sys.exit(1)


def wait_for(pred, timeout_s, what):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    fail("timed out after %d s waiting for %s" % (timeout_s, what))


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--controller-bin", "--fake-trainer-bin", "--source-dir", "--protoc", "--grpc-python-plugin"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401
    except ImportError as e:
        skip("%s cannot import grpc / protobuf (%s): apt-get install python3-grpcio python3-protobuf"
             % (sys.executable, e))
    if not os.access(args.grpc_python_plugin, os.X_OK):
        skip("grpc_python_plugin not found (%r): apt-get install protobuf-compiler-grpc" % args.grpc_python_plugin)

    work = tempfile.mkdtemp(prefix="rwkv_py_status_")
    controller = None
    try:
        # Stubs for launch/controller.proto: work/launch/controller_pb2{,_grpc}.py
        subprocess.run([args.protoc, "--proto_path=" + args.source_dir, "--python_out=" + work,
                        "--grpc_python_out=" + work, "--plugin=protoc-gen-grpc_python=" + args.grpc_python_plugin,
                        os.path.join(args.source_dir, "launch", "controller.proto")], check=True)
        sys.path.insert(0, work)
        import grpc
        from launch import controller_pb2 as pb
        from launch import controller_pb2_grpc as pb_grpc

        job_token, admin_token = secrets.token_hex(32), secrets.token_hex(32)
        for name, token in (("job.token", job_token), ("admin.token", admin_token)):
            with open(os.path.join(work, name), "w") as f:
                f.write(token + "\n")
            os.chmod(os.path.join(work, name), 0o600)
        ready = os.path.join(work, "ready.json")
        log = open(os.path.join(work, "controller.log"), "w")
        controller = subprocess.Popen(
            [args.controller_bin, "--listen", "127.0.0.1:0", "--http", "off", "--db", os.path.join(work, "c.db"),
             "--job-token-file", os.path.join(work, "job.token"), "--admin-token-file",
             os.path.join(work, "admin.token"), "--ready-file", ready], stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(ready) or controller.poll() is not None, 30, "rwkv-controller")
        if controller.poll() is not None:
            fail("rwkv-controller exited: " + open(os.path.join(work, "controller.log")).read())
        address = json.load(open(ready))["grpc"]

        # One rank trains STEPS steps through our own client (checkpoint interval 5).
        env = dict(os.environ, RWKV_CONTROLLER=address, RWKV_JOB=JOB, RWKV_JOB_TOKEN=job_token, RWKV_RANK="0",
                   RWKV_WORLD_SIZE="1")
        trainer = subprocess.run([args.fake_trainer_bin, "--steps", str(STEPS), "--interval", "5", "--step-ms", "5",
                                  "--ckpt-dir", os.path.join(work, "ckpt")], env=env, capture_output=True, text=True,
                                 timeout=60)
        if trainer.returncode != 0:
            fail("the fake trainer failed:\n" + trainer.stdout + trainer.stderr)

        channel = grpc.insecure_channel(address)
        admin = pb_grpc.AdminStub(channel)
        as_job = [("x-rwkv-token", job_token)]
        # The controller commits on a worker thread after the last ack: the
        # final checkpoint may still be committing when the rank is done.
        status = None

        def final_committed():
            nonlocal status
            status = admin.Status(pb.StatusRequest(job=JOB), metadata=as_job, timeout=10)
            return status.last_committed.step == STEPS

        try:
            wait_for(final_committed, 30, "the final checkpoint's commit")
        except SystemExit:
            print("last Status:\n%s\ncontroller log:\n%s" % (status, open(os.path.join(work, "controller.log")).read()))
            raise
        checks = {
            "job": (status.job, JOB),
            "state": (status.state, "completed"),
            "step": (status.step, STEPS),
            "total_steps": (status.total_steps, STEPS),
            "generation": (status.generation, 1),
            "world_size": (status.world_size, 1),
            "ranks[0].state": (status.ranks[0].state if status.ranks else None, "finished"),
            "last_committed.step": (status.last_committed.step, STEPS),
        }
        for field, (got, want) in checks.items():
            if got != want:
                fail("Status.%s is %r, expected %r\n%s" % (field, got, want, status))
        if not status.has_loss or abs(status.loss - 5.0 / (1.0 + 0.1 * STEPS)) > 1e-12:
            fail("Status.loss is %r (has_loss %r), expected the fake trainer's last loss" % (status.loss,
                                                                                            status.has_loss))
        # An empty job name means the latest job.
        if admin.Status(pb.StatusRequest(), metadata=as_job, timeout=10).job != JOB:
            fail("Status of the latest job is not " + JOB)

        metrics = admin.Metrics(pb.MetricsRequest(job=JOB, names=["loss"]), metadata=as_job, timeout=10)
        steps = [p.step for p in metrics.points]
        if steps != list(range(1, STEPS + 1)):
            fail("Metrics(loss) steps are %r, expected 1..%d" % (steps, STEPS))
        # Which interval steps the controller picks depends on the pace; the final one is always there.
        committed = [c.step for c in admin.Checkpoints(pb.CheckpointsRequest(job=JOB), metadata=as_job,
                                                       timeout=10).checkpoints if c.state == "committed"]
        if not committed or committed[-1] != STEPS or any(s % 5 and s != STEPS for s in committed):
            fail("committed checkpoints are %r, expected multiples of 5 ending with %d" % (committed, STEPS))

        # Refusals: a wrong token; a command with the job token.
        for call, request, token, code in (
                (admin.Status, pb.StatusRequest(job=JOB), "wrong", grpc.StatusCode.UNAUTHENTICATED),
                (admin.Stop, pb.StopRequest(job=JOB), job_token, grpc.StatusCode.PERMISSION_DENIED)):
            try:
                call(request, metadata=[("x-rwkv-token", token)], timeout=10)
                fail("%s with token %r was not refused" % (type(request).__name__, token))
            except grpc.RpcError as e:
                if e.code() != code:
                    fail("%s: got %s, expected %s" % (type(request).__name__, e.code(), code))
        print("OK: Python grpcio read job %s at step %d/%d (%s), loss %.6f, %d loss points, checkpoints %r"
              % (status.job, status.step, status.total_steps, status.state, status.loss, len(steps), committed))
    finally:
        if controller is not None and controller.poll() is None:
            controller.terminate()
            try:
                controller.wait(timeout=20)
            except subprocess.TimeoutExpired:
                controller.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
