#!/usr/bin/env python3
"""ferry's main job, end to end on one machine.

Starts an embedded local cluster (a real ZooKeeper, a source and a destination mock Kafka
cluster, N ferry workers), produces 100,000 records to `connect` on the source, creates the
seed's EMRReplicatorSourceConnector over REST exactly as a Kafka Connect user would with curl,
shows a live progress line while they are copied to `connect.replica`, verifies the copy record
by record (partition, order, key, value, headers, timestamp) and prints a summary.
Every process it starts is stopped by pid at the end. Exit code 0 only if the copy is exact.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import ferrytest as ft  # noqa: E402


def seed_request(src_bootstrap):
    # The seed request, verbatim but for the host names of this local cluster.
    return {"name": "connect-test", "config": {
        "connector.class": "EMRReplicatorSourceConnector",
        "key.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
        "src.kafka.bootstrap.servers": src_bootstrap,
        "src.zookeeper.connect": "127.0.0.1:2181",
        "dest.zookeeper.connect": "127.0.0.1:2181",
        "topic.whitelist": "connect",
        "topic.rename.format": "connect.replica",
        "src.kafka.max.poll.records": "300"}}


def progress(done, total, t0, width=30):
    el = max(time.monotonic() - t0, 1e-6)
    rate = done / el
    eta = (total - done) / rate if rate > 0 and done < total else 0.0
    filled = int(width * done / total) if total else width
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r  [{bar}] {done:>9,} / {total:,} records  {rate:>10,.0f} rec/s  ETA {eta:5.1f}s ")
    sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--size", type=int, default=100, help="value size in bytes")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("FERRY_DEMO_WORKERS", "3")))
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()

    print(f"ferry main job: {args.records:,} records, {args.partitions} partitions, "
          f"{args.workers} worker(s)")
    ok = False
    cluster = ft.Cluster(workers=args.workers, src_topics={"connect": args.partitions},
                         dst_topics={"connect.replica": args.partitions})
    try:
        cluster.__enter__()
        print(f"  ZooKeeper        {cluster.zk.connect}")
        print(f"  source Kafka     {cluster.src.bootstrap}")
        print(f"  destination Kafka {cluster.dst.bootstrap}")
        for w in cluster.workers:
            print(f"  worker           {w.url}  (pid {w.pid}, log {w.logpath})")

        t_prod = time.monotonic()
        ft.produce(cluster.src.bootstrap, "connect", args.records, size=args.size,
                   partitions=args.partitions)
        print(f"produced {args.records:,} records to 'connect' in {time.monotonic() - t_prod:.2f}s")

        t0 = time.monotonic()  # the migration: from creating the connector to the last record copied
        status, body, raw, _ = ft.http("POST", cluster.workers[-1].url + "/connectors",
                                       seed_request(cluster.src.bootstrap))
        print(f"POST /connectors -> {status}")
        if status != 201:
            print(raw.decode(errors="replace"))
            return 1
        done = 0
        while time.monotonic() - t0 < args.timeout:
            c = ft.count(cluster.dst.bootstrap, "connect.replica")
            done = c["total"] if c else 0
            progress(done, args.records, t0)
            if done >= args.records:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        sys.stderr.write("\n")
        if done < args.records:
            print(f"timed out: only {done:,} of {args.records:,} records arrived")
            return 1

        res = ft.compare(cluster.src.bootstrap, "connect", cluster.dst.bootstrap, "connect.replica",
                         exact=True)
        _, st, _, _ = ft.http("GET", cluster.url + "/connectors/connect-test/status")
        ok = res["rc"] == 0
        print("verification: " + ("OK, every record matches" if ok else "FAILED"))
        print(json.dumps({k: v for k, v in res.items() if k not in ("rc", "per_partition")}))
        print(f"connector status: {json.dumps(st)}")
        print("summary:")
        print(f"  records   {args.records:,} copied, {res['missing']} missing, "
              f"{res['duplicates']} duplicates, {res['reordered']} reordered, {res['mismatched']} mismatched")
        print(f"  seconds   {elapsed:.2f} (from POST /connectors to the last record on the destination)")
        print(f"  rate      {args.records / elapsed:,.0f} records/s")
        return 0 if ok else 1
    finally:
        cluster.close(failed=not ok)


if __name__ == "__main__":
    sys.exit(main())
