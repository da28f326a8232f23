#!/usr/bin/env node
/* verify.js: an independent reader of what ferry wrote, with KafkaJS (vendored here, 2.2.4) as
 * the Kafka client instead of librdkafka.
 *
 *   node verify.js compare --src BS --src-topic T --dst BS --dst-topic T [--batches]
 *                          [--timeout-ms MS]
 *   node verify.js produce --bootstrap BS --topic T --count N [--partitions P] [--start I]
 *                          [--gzip] [--corrupt-crc] [--timeout-ms MS]
 *   node verify.js selftest
 *
 * compare reads every partition of both topics from its log start to its high watermark. The
 * Fetch requests go out on KafkaJS's own broker connections, and KafkaJS's own RecordBatch
 * decoder (protocol/recordBatch/v0/decoder.js, with its gzip codec) decodes them. That decoder
 * checks no CRC ("The library is currently not performing CRC validations"), and librdkafka's
 * mock cluster checks neither CRCs nor sequence numbers on produce, so this file wraps the
 * decoder to keep each batch's raw bytes and walks them a second time with a RecordBatch v2
 * walker of its own:
 *
 *   - the CRC32C (Castagnoli) of every batch, source and destination, from the attributes to
 *     the end, against the stored one;
 *   - the walker and KafkaJS agree on every record (offset, timestamp, key, value, headers);
 *   - per destination partition, the sequence numbers of each producer id and epoch: the
 *     first batch starts at 0 and each next one right after the previous (a broker refuses a
 *     gap or a new epoch not starting at 0; a producer id it holds no state for may start
 *     anywhere since Kafka 2.5, but ferry's producers start at 0, so 0 is checked);
 *   - per partition, source and destination hold the same records in the same order: key and
 *     value (null, empty and bytes told apart), headers (names, values, order), timestamp;
 *   - with --batches (batch passthrough), each destination batch equals its source batch in
 *     every byte but the fields ferry rewrites (base offset, partition leader epoch, CRC,
 *     producer id and epoch, base sequence, and the transactional attribute, which the copy
 *     must not have: see kwire_batch_rewrite in proto/kwire.h): same records bytes,
 *     compression, timestamps; control batches (transaction markers) are not copied.
 *
 * It prints one JSON line and exits 0 when everything holds, 1 on any difference or bad CRC,
 * 2 when it cannot check (bad usage, a cluster that does not answer, a codec KafkaJS lacks:
 * only gzip is built into KafkaJS; snappy, lz4 and zstd need packages not vendored here).
 *
 * produce writes deterministic records that kafkatool does not make (null and empty keys and
 * values, binary bytes, repeated and non-ASCII header names) with KafkaJS's producer;
 * --corrupt-crc makes KafkaJS's encoder store a wrong CRC in every batch (the mock takes it),
 * so the tests can show that compare catches one read back from a real Fetch.
 * KafkaJS cannot produce a header with a null value (its encoder takes Buffer.byteLength of
 * it), so none is made.
 *
 * The CRC32C here is a plain table-driven one, written for this test oracle; selftest checks
 * it against the standard check value and against KafkaJS's own implementation, and checks
 * that the walker and the comparison catch a flipped byte. */
'use strict';

const path = require('path');
const zlib = require('zlib');

const KJS = path.join(__dirname, 'node_modules', 'kafkajs', 'src');
const kjs = name => require(path.join(KJS, name));

/* ------------------------------------------------------------------ the decoder hook */

/* KafkaJS's Fetch response decoders call this module's export for every batch; the wrapper,
 * installed before any of them is loaded, keeps the raw bytes of each batch decoded while
 * `capture` is set (one Fetch of one partition at a time). */
const BATCH_DECODER = require.resolve(path.join(KJS, 'protocol/recordBatch/v0/decoder'));
const kjsDecodeBatch = require(BATCH_DECODER);
let capture = null;
require.cache[BATCH_DECODER].exports = async fetchDecoder => {
  const start = fetchDecoder.offset;
  const batch = await kjsDecodeBatch(fetchDecoder); /* a partial tail throws, and is not kept */
  if (capture)
    capture.push({ raw: fetchDecoder.buffer.subarray(start, fetchDecoder.offset), kjs: batch });
  return batch;
};

/* --corrupt-crc: KafkaJS's batch encoder stores CRC32C ^ 1. Installed before the producer loads. */
function corruptKafkaJsCrc() {
  const where = require.resolve(path.join(KJS, 'protocol/recordBatch/crc32C'));
  const good = require(where);
  require.cache[where].exports = buf => (good(buf) ^ 1) >>> 0;
}

/* ------------------------------------------------------------------ CRC32C (Castagnoli) */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++)
      c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32c(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++)
    c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/* ------------------------------------------------------------------ RecordBatch v2 walker */

/* Byte offsets in a v2 batch (Kafka's DefaultRecordBatch). */
const B = {
  BASE: 0, LENGTH: 8, LEADER_EPOCH: 12, MAGIC: 16, CRC: 17, ATTRIBUTES: 21,
  LAST_DELTA: 23, FIRST_TS: 27, MAX_TS: 35, PRODUCER_ID: 43, PRODUCER_EPOCH: 51,
  BASE_SEQUENCE: 53, COUNT: 57, RECORDS: 61,
};
/* What batch passthrough keeps, as [name, from, to): all but the fields ferry rewrites (the
 * attributes are compared on their own). */
const KEPT = [['length', 8, 12], ['magic', 16, 17], ['lastOffsetDelta', 23, 27],
  ['firstTimestamp', 27, 35], ['maxTimestamp', 35, 43], ['records', 57, Infinity]];
const TRANSACTIONAL = 0x10;
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

class Reader {
  constructor(buf) { this.buf = buf; this.pos = 0; }

  need(n, what) {
    if (n < 0 || this.pos + n > this.buf.length)
      throw new Error(`${what} runs past the end (${n} bytes at ${this.pos} of ` +
        `${this.buf.length})`);
  }

  varlong() {
    let u = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (shift > 63n)
        throw new Error(`varint longer than 10 bytes at ${this.pos}`);
      this.need(1, 'varint');
      const b = this.buf[this.pos++];
      u |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80))
        return (u >> 1n) ^ -(u & 1n);
    }
  }

  varint() {
    const v = this.varlong();
    if (v < -(2n ** 31n) || v >= 2n ** 31n)
      throw new Error(`varint ${v} out of int32 range`);
    return Number(v);
  }

  bytes(what) {
    const n = this.varint();
    if (n === -1)
      return null;
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

/* One record of a batch's (decompressed) records section. */
function walkRecord(rd, batch) {
  const len = rd.varint();
  rd.need(len, 'record');
  const end = rd.pos + len;
  rd.pos += 1; /* record attributes: unused */
  const tsDelta = rd.varlong();
  const offsetDelta = rd.varint();
  const key = rd.bytes('key');
  const value = rd.bytes('value');
  const n = rd.varint();
  const headers = [];
  for (let i = 0; i < n; i++) {
    const name = rd.bytes('header name');
    if (name === null)
      throw new Error('header with a null name');
    headers.push([name, rd.bytes('header value')]);
  }
  if (rd.pos !== end)
    throw new Error(`record length ${len} but its fields take ${rd.pos - end + len}`);
  const logAppend = (batch.attributes & 0x08) !== 0;
  return {
    offset: batch.base + BigInt(offsetDelta),
    timestamp: logAppend ? batch.maxTimestamp : batch.firstTimestamp + tsDelta,
    key, value, headers,
  };
}

/* Everything in a batch's raw bytes; `error` says what is malformed (records then partial). */
function walkBatch(raw) {
  const b = { error: null, records: [] };
  if (raw.length < B.RECORDS) {
    b.error = `batch of ${raw.length} bytes, shorter than a v2 header`;
    return b;
  }
  b.base = raw.readBigInt64BE(B.BASE);
  b.length = raw.readInt32BE(B.LENGTH);
  b.leaderEpoch = raw.readInt32BE(B.LEADER_EPOCH);
  b.magic = raw.readInt8(B.MAGIC);
  b.crcStored = raw.readUInt32BE(B.CRC);
  b.crcComputed = crc32c(raw.subarray(B.ATTRIBUTES));
  b.attributes = raw.readInt16BE(B.ATTRIBUTES);
  b.lastOffsetDelta = raw.readInt32BE(B.LAST_DELTA);
  b.firstTimestamp = raw.readBigInt64BE(B.FIRST_TS);
  b.maxTimestamp = raw.readBigInt64BE(B.MAX_TS);
  b.producerId = raw.readBigInt64BE(B.PRODUCER_ID);
  b.producerEpoch = raw.readInt16BE(B.PRODUCER_EPOCH);
  b.baseSequence = raw.readInt32BE(B.BASE_SEQUENCE);
  b.count = raw.readInt32BE(B.COUNT);
  b.codec = CODECS[b.attributes & 0x07] || `codec ${b.attributes & 0x07}`;
  b.control = (b.attributes & 0x20) !== 0;
  try {
    if (b.magic !== 2)
      throw new Error(`magic ${b.magic}`);
    if (b.length !== raw.length - B.LEADER_EPOCH)
      throw new Error(`length field ${b.length}, but ${raw.length - 12} bytes follow it`);
    let body = raw.subarray(B.RECORDS);
    if (b.codec === 'gzip')
      body = zlib.gunzipSync(body);
    else if (b.codec !== 'none')
      throw new Error(`${b.codec} compression: only gzip and none can be checked here`);
    const rd = new Reader(body);
    for (let i = 0; i < b.count; i++)
      b.records.push(walkRecord(rd, b));
    if (rd.pos !== body.length)
      throw new Error(`${body.length - rd.pos} bytes after the last of ${b.count} records`);
  } catch (e) {
    b.error = e.message;
  }
  return b;
}

/* ------------------------------------------------------------------ comparisons */

const bufEq = (a, b) => (a === null || b === null ? a === b : Buffer.compare(a, b) === 0);
const hex = b => (b === null ? 'null' : b.length <= 24 ? b.toString('hex')
  : `${b.subarray(0, 24).toString('hex')}…(${b.length} bytes)`);
const showHeaders = hs => hs.map(([n, v]) => `${n.toString('utf8')}=${hex(v)}`).join(',');

/* KafkaJS's header object (record/v0/decoder.js): repeated names fold into an array. */
function foldHeaders(headers) {
  const obj = {};
  for (const [n, v] of headers) {
    const k = n.toString('utf8');
    obj[k] = obj[k] === undefined ? v : Array.isArray(obj[k]) ? obj[k].concat([v]) : [obj[k], v];
  }
  return obj;
}

function sameFolded(a, b) {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length)
    return false;
  return ka.every(k => {
    const x = a[k], y = b[k];
    if (Array.isArray(x) || Array.isArray(y))
      return Array.isArray(x) && Array.isArray(y) && x.length === y.length &&
        x.every((v, i) => bufEq(v, y[i]));
    return y !== undefined && bufEq(x, y);
  });
}

/* The first field in which KafkaJS's record and the walker's differ, or null. */
function kjsDisagrees(mine, theirs) {
  if (theirs.offset !== String(mine.offset))
    return `offset ${theirs.offset} vs ${mine.offset}`;
  if (theirs.timestamp !== String(mine.timestamp))
    return `timestamp ${theirs.timestamp} vs ${mine.timestamp}`;
  if (!bufEq(theirs.key, mine.key))
    return `key ${hex(theirs.key)} vs ${hex(mine.key)}`;
  if (!bufEq(theirs.value, mine.value))
    return `value ${hex(theirs.value)} vs ${hex(mine.value)}`;
  if (!sameFolded(theirs.headers, foldHeaders(mine.headers)))
    return `headers ${JSON.stringify(Object.keys(theirs.headers))} vs ${showHeaders(mine.headers)}`;
  return null;
}

/* The first field in which two records differ (offsets aside), or null. */
function recordDiff(s, d) {
  if (!bufEq(s.key, d.key))
    return `key ${hex(s.key)} vs ${hex(d.key)}`;
  if (!bufEq(s.value, d.value))
    return `value ${hex(s.value)} vs ${hex(d.value)}`;
  if (s.headers.length !== d.headers.length ||
      s.headers.some(([n, v], i) => !bufEq(n, d.headers[i][0]) || !bufEq(v, d.headers[i][1])))
    return `headers [${showHeaders(s.headers)}] vs [${showHeaders(d.headers)}]`;
  if (s.timestamp !== d.timestamp)
    return `timestamp ${s.timestamp} vs ${d.timestamp}`;
  return null;
}

/* The first kept region in which a destination batch differs from its source batch, or null.
 * The copy has the source's attributes without the transactional bit. */
function batchDiff(s, d) {
  if (s.length < B.RECORDS || d.length < B.RECORDS)
    return s.length === d.length ? null : 'length';
  if ((s.readInt16BE(B.ATTRIBUTES) & ~TRANSACTIONAL) !== d.readInt16BE(B.ATTRIBUTES))
    return 'attributes';
  for (const [name, from, to] of KEPT) {
    const a = s.subarray(from, Math.min(to, s.length));
    const b = d.subarray(from, Math.min(to, d.length));
    if (Buffer.compare(a, b) !== 0)
      return name;
  }
  return null;
}

/* Sequence numbers as a broker checks them, for one partition's batches in log order; adds the
 * producer ids and epochs seen to `producers`. */
function sequenceErrors(batches, say, producers) {
  const next = new Map();
  let errors = 0;
  for (const b of batches) {
    if (b.producerId < 0n || b.control)
      continue;
    const id = `${b.producerId}/${b.producerEpoch}`;
    producers.add(id);
    const want = next.has(id) ? next.get(id) : 0;
    if (b.baseSequence !== want) {
      errors++;
      say(`batch at offset ${b.base}: producer ${id} base sequence ${b.baseSequence}, ` +
        `expected ${want}`);
    }
    next.set(id, (b.baseSequence + b.lastOffsetDelta + 1) % 2 ** 31);
  }
  return errors;
}

/* ------------------------------------------------------------------ reading a topic */

function kjsCluster(bootstrap) {
  const Cluster = kjs('cluster');
  const { createLogger, LEVELS } = kjs('loggers');
  return new Cluster({
    logger: createLogger({ level: LEVELS.NOTHING, logCreator: kjs('loggers/console') }),
    socketFactory: kjs('network/socketFactory')(),
    brokers: bootstrap.split(','),
    clientId: 'ferry-kjs-verify',
    connectionTimeout: 3000,
    requestTimeout: 10000,
    enforceRequestTimeout: true,
    retry: { retries: 3 },
    isolationLevel: kjs('protocol/isolationLevel').READ_UNCOMMITTED,
  });
}

async function offsets(cluster, topic, parts, fromBeginning) {
  const [t] = await cluster.fetchTopicsOffset([
    { topic, partitions: parts.map(partition => ({ partition })), fromBeginning }]);
  const byPart = new Map(t.partitions.map(p => [p.partition, BigInt(p.offset)]));
  return parts.map(p => byPart.get(p));
}

/* The Fetch version KafkaJS sends this broker (as protocol/requests/index.js picks it). */
function fetchVersion(broker) {
  const { requests } = kjs('protocol/requests');
  const mine = Math.max(...requests.Fetch.versions.map(Number));
  return Math.min(mine, broker.versions[kjs('protocol/requests/apiKeys').Fetch].maxVersion);
}

/* Every batch of one partition from `start` to `end`, each as { raw, walk, kjs }. */
async function readPartition(cluster, topic, partition, start, end, state) {
  const out = [];
  let at = start;
  let maxBytes = 1 << 20;
  while (at < end) {
    const leader = Object.keys(cluster.findLeaderForPartitions(topic, [partition]))[0];
    const broker = await cluster.findBroker({ nodeId: leader });
    state.fetchVersion = fetchVersion(broker);
    capture = [];
    const resp = await broker.fetch({
      isolationLevel: kjs('protocol/isolationLevel').READ_UNCOMMITTED,
      maxWaitTime: 100, minBytes: 1, maxBytes: maxBytes * 2,
      topics: [{ topic, partitions: [{ partition, fetchOffset: String(at), maxBytes }] }],
    });
    const got = capture;
    capture = null;
    const decoded = resp.responses[0].partitions[0].messages.length;
    if (!got.length) {
      if (decoded)
        throw new Error(`KafkaJS decoded ${decoded} records of ${topic}[${partition}]@${at}, ` +
          'but the batch hook saw no batch (legacy message format?)');
      if (maxBytes >= 64 << 20)
        throw new Error(`no whole batch at ${topic}[${partition}]@${at} within ${maxBytes} bytes`);
      maxBytes *= 4;
      continue;
    }
    for (const { raw, kjs: kb } of got) {
      const walk = walkBatch(raw);
      if (walk.error === null && walk.base + BigInt(walk.lastOffsetDelta) < at)
        continue; /* before the fetch offset: already read */
      if (walk.error === null && walk.base >= end) {
        at = end; /* written after the high watermark was read */
        break;
      }
      out.push({ raw, walk, kjs: kb });
      if (walk.error !== null)
        return out; /* its length cannot be trusted to find the next one */
      at = walk.base + BigInt(walk.lastOffsetDelta) + 1n;
    }
  }
  return out;
}

/* One topic, every partition: batches checked on their own, data records in order. */
async function readTopic(bootstrap, topic, state, say) {
  const cluster = kjsCluster(bootstrap);
  await cluster.connect();
  try {
    await cluster.addTargetTopic(topic);
    const meta = cluster.findTopicPartitionMetadata(topic);
    if (!meta.length)
      throw new Error(`topic ${topic} not found at ${bootstrap}`);
    const parts = meta.map(p => p.partitionId).sort((a, b) => a - b);
    const starts = await offsets(cluster, topic, parts, true);
    const ends = await offsets(cluster, topic, parts, false);
    const t = {
      topic, partitions: parts.length, records: 0, batches: 0, control_batches: 0,
      transactional_batches: 0, bad_crc: 0, malformed: 0, codecs: {}, per_partition: [],
    };
    for (const [i, p] of parts.entries()) {
      const batches = await readPartition(cluster, topic, p, starts[i], ends[i], state);
      const records = [];
      for (const { walk: w, kjs: kb } of batches) {
        const where = `${topic}[${p}] batch at offset ${w.base}`;
        t.batches++;
        t.codecs[w.codec] = (t.codecs[w.codec] || 0) + 1;
        if (w.crcStored !== w.crcComputed) {
          t.bad_crc++;
          say(`${where}: CRC32C stored 0x${w.crcStored.toString(16)}, ` +
            `computed 0x${w.crcComputed.toString(16)}`);
        }
        if (w.error !== null) {
          t.malformed++;
          say(`${where}: ${w.error}`);
          continue;
        }
        if (w.control) {
          t.control_batches++;
          continue;
        }
        if (w.attributes & TRANSACTIONAL)
          t.transactional_batches++;
        if (kb.records.length !== w.records.length) {
          state.disagreements++;
          say(`${where}: KafkaJS decoded ${kb.records.length} records, ` +
            `the walker ${w.records.length}`);
        }
        w.records.forEach((r, j) => {
          const why = kb.records[j] ? kjsDisagrees(r, kb.records[j]) : 'missing in KafkaJS';
          if (why) {
            state.disagreements++;
            say(`${topic}[${p}]@${r.offset}: KafkaJS and the walker disagree: ${why}`);
          }
        });
        records.push(...w.records);
      }
      t.records += records.length;
      t.per_partition.push({ partition: p, start: String(starts[i]), end: String(ends[i]),
        batches, records });
    }
    return t;
  } finally {
    await cluster.disconnect();
  }
}

/* ------------------------------------------------------------------ compare */

async function compare(o) {
  const errors = [];
  const say = msg => { if (errors.length < 20) errors.push(msg); };
  const state = { disagreements: 0, fetchVersion: null };
  const src = await readTopic(o.src, o['src-topic'], state, say);
  const dst = await readTopic(o.dst, o['dst-topic'], state, say);
  const sum = { compared: 0, missing: 0, extra: 0, mismatched: 0, batch_mismatches: 0 };
  if (src.partitions !== dst.partitions)
    say(`${src.partitions} source partitions, ${dst.partitions} destination partitions`);
  dst.sequence_errors = 0;
  const producers = new Set();
  for (const dp of dst.per_partition) {
    const walks = dp.batches.map(b => b.walk).filter(w => w.error === null);
    dst.sequence_errors += sequenceErrors(walks, msg => say(`${dst.topic}[${dp.partition}] ${msg}`),
      producers);
  }
  dst.producers = producers.size;
  for (const sp of src.per_partition) {
    const dp = dst.per_partition.find(x => x.partition === sp.partition);
    const s = sp.records, d = dp ? dp.records : [];
    const n = Math.min(s.length, d.length);
    sum.missing += Math.max(0, s.length - d.length);
    sum.extra += Math.max(0, d.length - s.length);
    if (s.length !== d.length)
      say(`partition ${sp.partition}: ${s.length} source records, ${d.length} destination records`);
    for (let i = 0; i < n; i++) {
      const why = recordDiff(s[i], d[i]);
      if (why) {
        sum.mismatched++;
        say(`partition ${sp.partition} record ${i} (source offset ${s[i].offset}, ` +
          `destination offset ${d[i].offset}): ${why}`);
      } else {
        sum.compared++;
      }
    }
    if (!o.batches)
      continue;
    const data = bs => bs.filter(b => b.walk.error !== null || !b.walk.control);
    const sb = data(sp.batches), db = data(dp ? dp.batches : []);
    if (sb.length !== db.length) {
      sum.batch_mismatches += Math.abs(sb.length - db.length);
      say(`partition ${sp.partition}: ${sb.length} source batches, ` +
        `${db.length} destination batches`);
    }
    for (let i = 0; i < Math.min(sb.length, db.length); i++) {
      const region = batchDiff(sb[i].raw, db[i].raw);
      if (region) {
        sum.batch_mismatches++;
        say(`partition ${sp.partition} batch ${i} (source offset ${sb[i].walk.base}, ` +
          `destination offset ${db[i].walk.base}): ${region} differ`);
      }
    }
  }
  const brief = t => {
    const { per_partition: _, ...rest } = t;
    return rest;
  };
  const ok = errors.length === 0 && state.disagreements === 0 &&
    src.partitions === dst.partitions && !src.bad_crc && !dst.bad_crc && !src.malformed &&
    !dst.malformed && !dst.sequence_errors &&
    !sum.missing && !sum.extra && !sum.mismatched && !sum.batch_mismatches;
  return {
    ok, mode: o.batches ? 'batches' : 'records', src: brief(src), dst: brief(dst), ...sum,
    batch_mismatches: o.batches ? sum.batch_mismatches : null,
    decoder_disagreements: state.disagreements, fetch_version: state.fetchVersion, errors,
  };
}

/* ------------------------------------------------------------------ produce */

/* Record i of `produce`: every kind of key, value and header kafkatool does not write. */
function oddRecord(i, parts) {
  const bytes = n => Buffer.from(Array.from({ length: n }, (_, j) => (i * 31 + j * 7) & 0xff));
  const key = i % 7 === 3 ? null : i % 7 === 4 ? Buffer.alloc(0) : Buffer.from(`key-${i}`);
  const value = i % 11 === 5 ? null : i % 13 === 6 ? Buffer.alloc(0) : bytes((i * 37) % 300);
  const headers = {};
  if (i % 5 !== 0) {
    headers.dup = [Buffer.from(`a${i}`), bytes(3)];
    headers['ünï-ç'] = Buffer.from([0x00, 0xff, i & 0xff]);
    if (i % 3 === 0)
      headers.empty = Buffer.alloc(0);
  }
  return { partition: i % parts, key, value, headers, timestamp: String(1700000000000 + i * 3) };
}

async function produce(o) {
  if (o['corrupt-crc'])
    corruptKafkaJsCrc();
  const kafkajs = require(path.join(__dirname, 'node_modules', 'kafkajs'));
  const { Kafka, CompressionTypes, logLevel } = kafkajs;
  const kafka = new Kafka({ brokers: o.bootstrap.split(','), clientId: 'ferry-kjs-produce',
    logLevel: logLevel.NOTHING, retry: { retries: 5 } });
  /* Not idempotent: KafkaJS asks the controller for an idempotent producer's id, and the mock
   * names controller 0 in its Metadata answers, which is none of its brokers (1..n). */
  const producer = kafka.producer({ maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const parts = Number(o.partitions || 1), start = Number(o.start || 0), n = Number(o.count);
    const compression = o.gzip ? CompressionTypes.GZIP : CompressionTypes.None;
    for (let k = 0; k < n; k += 50) {
      const messages = [];
      for (let i = start + k; i < start + Math.min(n, k + 50); i++)
        messages.push(oddRecord(i, parts));
      await producer.send({ topic: o.topic, acks: -1, compression, messages });
    }
    return { ok: true, produced: n, topic: o.topic, gzip: !!o.gzip,
      corrupt_crc: !!o['corrupt-crc'] };
  } finally {
    await producer.disconnect();
  }
}

/* ------------------------------------------------------------------ selftest */

/* The oracle's own checks: the CRC, the walker against KafkaJS's encoder, the comparisons. */
async function selftest() {
  const failed = [];
  let checks = 0;
  const check = (cond, what) => { checks++; if (!cond) failed.push(what); };

  check(crc32c(Buffer.from('123456789')) === 0xe3069283, 'CRC32C("123456789") = 0xE3069283');
  check(crc32c(Buffer.alloc(0)) === 0, 'CRC32C of nothing = 0');
  const kjsCrc = kjs('protocol/recordBatch/crc32C');
  for (let n = 0; n < 300; n += 7) {
    const buf = Buffer.from(Array.from({ length: n }, (_, j) => (j * 131 + n) & 0xff));
    check(crc32c(buf) === kjsCrc(buf), `CRC32C agrees with KafkaJS's over ${n} bytes`);
  }

  /* batches made by KafkaJS's encoder, uncompressed and gzip, read back by the walker */
  const Long = kjs('utils/long');
  const Record = kjs('protocol/recordBatch/record/v0');
  const { RecordBatch } = kjs('protocol/recordBatch/v0');
  const { Types } = kjs('protocol/message/compression');
  const want = Array.from({ length: 20 }, (_, i) => oddRecord(i, 1));
  const t0 = BigInt(want[0].timestamp);
  for (const compression of [Types.None, Types.GZIP]) {
    const enc = await RecordBatch({
      compression, firstOffset: Long.fromValue(100), firstTimestamp: Number(t0),
      maxTimestamp: Number(t0) + 60, lastOffsetDelta: want.length - 1,
      producerId: Long.fromValue(7), producerEpoch: 1, firstSequence: 40,
      records: want.map((r, i) => Record({ offsetDelta: i,
        timestampDelta: Number(BigInt(r.timestamp) - t0),
        key: r.key, value: r.value, headers: r.headers })),
    });
    const raw = enc.buffer;
    const name = CODECS[compression];
    const w = walkBatch(raw);
    check(w.error === null, `${name}: the walker reads KafkaJS's batch (${w.error})`);
    check(w.crcStored === w.crcComputed, `${name}: KafkaJS's CRC verifies`);
    check(w.base === 100n && w.producerId === 7n && w.baseSequence === 40 && w.count === 20,
      `${name}: header fields`);
    check(w.records.length === want.length && w.records.every((r, i) =>
      r.offset === 100n + BigInt(i) && r.timestamp === BigInt(want[i].timestamp) &&
      bufEq(r.key, want[i].key) && bufEq(r.value, want[i].value) &&
      sameFolded(foldHeaders(r.headers), want[i].headers)), `${name}: records read back`);
    const kb = await kjsDecodeBatch(new (kjs('protocol/decoder'))(raw));
    check(kb.records.every((r, i) => kjsDisagrees(w.records[i], r) === null),
      `${name}: KafkaJS's decoder agrees with the walker`);
    /* every byte the CRC covers, flipped one at a time, is caught */
    let missed = 0;
    for (let at = B.ATTRIBUTES; at < raw.length; at++) {
      const bad = Buffer.from(raw);
      bad[at] ^= 0x10;
      const wb = walkBatch(bad);
      if (wb.crcStored === wb.crcComputed)
        missed++;
    }
    check(missed === 0, `${name}: ${missed} flipped bytes not caught by the CRC`);
    const badCrc = Buffer.from(raw);
    badCrc[B.CRC + 3] ^= 1;
    const wc = walkBatch(badCrc);
    check(wc.crcStored !== wc.crcComputed, `${name}: a flipped CRC byte is caught`);
    const kept = Buffer.from(raw);
    kept.writeBigInt64BE(5n, B.BASE);
    kept.writeInt16BE(3, B.PRODUCER_EPOCH);
    check(batchDiff(raw, kept) === null, `${name}: rewritten fields are not compared`);
    const changed = Buffer.from(raw);
    changed[raw.length - 1] ^= 1;
    check(batchDiff(raw, changed) === 'records',
      `${name}: a changed records byte is a batch mismatch`);
    const txn = Buffer.from(raw);
    txn.writeInt16BE(raw.readInt16BE(B.ATTRIBUTES) | TRANSACTIONAL, B.ATTRIBUTES);
    check(batchDiff(txn, raw) === null, `${name}: the transactional bit is cleared in the copy`);
    check(batchDiff(txn, txn) === 'attributes', `${name}: a copy still transactional differs`);
    const gz = Buffer.from(raw);
    gz.writeInt16BE(raw.readInt16BE(B.ATTRIBUTES) ^ 1, B.ATTRIBUTES);
    check(batchDiff(raw, gz) === 'attributes', `${name}: another codec is a batch mismatch`);
  }

  /* record comparison and sequence numbers */
  const r = { key: Buffer.from('k'), value: Buffer.from('v'), timestamp: 5n,
    headers: [[Buffer.from('a'), Buffer.from('1')], [Buffer.from('b'), null]] };
  check(recordDiff(r, { ...r }) === null, 'equal records compare equal');
  check(recordDiff(r, { ...r, key: null }) !== null, 'null key vs bytes');
  check(recordDiff(r, { ...r, value: Buffer.alloc(0) }) !== null, 'empty value vs bytes');
  check(recordDiff(r, { ...r, timestamp: 6n }) !== null, 'timestamp');
  check(recordDiff(r, { ...r, headers: [r.headers[1], r.headers[0]] }) !== null, 'header order');
  check(recordDiff(r, { ...r, headers: [r.headers[0]] }) !== null, 'a missing header');
  const emptyB = [Buffer.from('b'), Buffer.alloc(0)];
  check(recordDiff(r, { ...r, headers: [r.headers[0], emptyB] }) !== null,
    'null header value vs empty');
  const seq = (base, last, pid = 1n) => ({ producerId: pid, producerEpoch: 0, baseSequence: base,
    lastOffsetDelta: last, base: 0n, control: false });
  const ids = new Set();
  check(sequenceErrors([seq(0, 4), seq(5, 0), seq(0, 2, 2n), seq(6, 9)], () => {}, ids) === 0 &&
    ids.size === 2, 'contiguous sequences of two producers');
  check(sequenceErrors([seq(0, 4), seq(6, 0)], () => {}, ids) === 1, 'a sequence gap');
  check(sequenceErrors([seq(0, 4), seq(0, 4)], () => {}, ids) === 1, 'a sequence repeated');
  check(sequenceErrors([seq(3, 4)], () => {}, ids) === 1, "a producer's first sequence not 0");

  return { ok: failed.length === 0, selftest: checks, failed };
}

/* ------------------------------------------------------------------ main */

const USAGE = 'usage: verify.js compare --src BS --src-topic T --dst BS --dst-topic T ' +
  '[--batches] [--timeout-ms MS] | produce --bootstrap BS --topic T --count N ' +
  '[--partitions P] [--start I] [--gzip] [--corrupt-crc] [--timeout-ms MS] | selftest';
const FLAGS = new Set(['batches', 'gzip', 'corrupt-crc']);
const REQUIRED = {
  compare: ['src', 'src-topic', 'dst', 'dst-topic'],
  produce: ['bootstrap', 'topic', 'count'],
  selftest: [],
};

function parseArgs(argv) {
  const [cmd, ...rest] = argv;
  if (!REQUIRED[cmd])
    throw new Error(USAGE);
  const o = { cmd };
  for (let i = 0; i < rest.length; i++) {
    const m = /^--(.+)$/.exec(rest[i]);
    if (!m)
      throw new Error(`unexpected argument '${rest[i]}'; ${USAGE}`);
    if (FLAGS.has(m[1]))
      o[m[1]] = true;
    else if (i + 1 < rest.length)
      o[m[1]] = rest[++i];
    else
      throw new Error(`option --${m[1]} needs a value`);
  }
  for (const k of REQUIRED[cmd])
    if (o[k] === undefined)
      throw new Error(`${cmd}: --${k} is required; ${USAGE}`);
  return o;
}

function finish(report, rc) {
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(rc));
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    return finish({ ok: false, error: e.message }, 2);
  }
  const ms = Number(o['timeout-ms'] || 30000);
  const late = () => finish({ ok: false, error: `${o.cmd}: not done within ${ms} ms` }, 2);
  setTimeout(late, ms).unref();
  try {
    const report = await { compare, produce, selftest }[o.cmd](o);
    finish(report, report.ok ? 0 : 1);
  } catch (e) {
    const cause = e.cause ? ` (${e.cause.message})` : '';
    finish({ ok: false, error: `${o.cmd}: ${e.message}${cause}` }, 2);
  }
}

main();
