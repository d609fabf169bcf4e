#!/usr/bin/env node
// An independent peer for tests/crypto.bats: the Noise handshake is noise-c's
// (rweather's C library, compiled to WebAssembly: @richardhopton/noise-c.wasm),
// the record layer is written here afresh from the format in src/lib/record.h.
//
// usage: node peer.js init|resp PSKHEX|@KEYFILE [-p PROLOGUEHEX] [-H HASHFILE]
//                      [-c PORT | -l PORT]
//
// Like `cryptotest noise-init|noise-resp`: the transport comes in on fd 3 and
// goes out on fd 4, each handshake message after a 2-byte big-endian length,
// then records both ways: stdin to the peer, the peer's stream to stdout.
// Exits 0 once both streams have ended with their END record, 1 on any failure
// (with the reason on stderr).
//
// For tests/channel.bats the transport can be TCP instead: -c PORT connects to
// 127.0.0.1 PORT, -l PORT listens there and takes one connection (it prints
// "listening" on stderr once it does). @KEYFILE derives the PSK from a key file
// as the tools' -k does, with Node's own HKDF: one line end (LF or CR LF) is not
// part of the key, then HKDF-SHA256 with the salt "socketpool psk v1".
'use strict';

const fs = require('fs');
const net = require('net');
const createNoise = require('@richardhopton/noise-c.wasm');

const PROTOCOL = 'Noise_NNpsk0_25519_ChaChaPoly_SHA256';
const DATA = 0;
const END = 1;
const PLAIN_MAX = 65535 - 16 - 1;

function fail(why) {
  process.stderr.write(`peer.js: ${why}\n`);
  process.exit(1);
}

function hex(s, what) {
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) fail(`${what} is not hex: ${s}`);
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

const argv = process.argv.slice(2);
if (argv.length < 2 || !['init', 'resp'].includes(argv[0])) {
  process.stderr.write('usage: node peer.js init|resp PSKHEX [-p PROLOGUEHEX] [-H HASHFILE]\n');
  process.exit(2);
}
const initiator = argv[0] === 'init';
function pskOf(arg) {
  if (!arg.startsWith('@')) return hex(arg, 'the PSK');
  let key = fs.readFileSync(arg.slice(1));
  if (key.length && key[key.length - 1] === 0x0a) {
    key = key.subarray(0, key.length - 1);
    if (key.length && key[key.length - 1] === 0x0d) key = key.subarray(0, key.length - 1);
  }
  return new Uint8Array(require('crypto').hkdfSync('sha256', key, 'socketpool psk v1', '', 32));
}
const psk = pskOf(argv[1]);
if (psk.length !== 32) fail('the PSK is 32 bytes');
let prologue = new Uint8Array(0);
let hashFile = null;
let connectPort = null;
let listenPort = null;
for (let i = 2; i < argv.length; i += 2) {
  if (argv[i] === '-p') prologue = hex(argv[i + 1] || '', 'the prologue');
  else if (argv[i] === '-H') hashFile = argv[i + 1];
  else if (argv[i] === '-c') connectPort = Number(argv[i + 1]);
  else if (argv[i] === '-l') listenPort = Number(argv[i + 1]);
  else fail(`unknown option ${argv[i]}`);
}

let tin;
let tout;
let started = null; // the handshake waits for a TCP transport to be there
if (connectPort !== null) {
  const s = net.connect({ host: '127.0.0.1', port: connectPort, allowHalfOpen: true });
  tin = tout = s;
  started = new Promise((ok) => s.on('connect', ok));
} else if (listenPort !== null) {
  // A stand-in until the connection comes: the handlers below go on the real one.
  tin = tout = null;
  started = new Promise((ok) => {
    const srv = net.createServer({ allowHalfOpen: true }, (s) => {
      srv.close();
      tin = tout = s;
      ok();
    });
    srv.listen(listenPort, '127.0.0.1', () => process.stderr.write('listening\n'));
  });
} else {
  // Sockets rather than fs streams: a read of a FIFO pending in libuv's thread
  // pool keeps process.exit from returning, and a failing peer must exit.
  tin = new net.Socket({ fd: 3, readable: true, writable: false });
  tout = new net.Socket({ fd: 4, readable: false, writable: true });
}

// Frames (a 2-byte big-endian length, then that many bytes) as they complete.
let pending = Buffer.alloc(0);
let onFrame = null;
let transportEnded = false;
let onTransportEnd = null;

function drainFrames() {
  while (pending.length >= 2) {
    const n = pending.readUInt16BE(0);
    if (pending.length < 2 + n) break;
    const body = Uint8Array.from(pending.subarray(2, 2 + n));
    pending = pending.subarray(2 + n);
    onFrame(body);
  }
}

function attach() {
  tin.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    if (onFrame) drainFrames();
  });
  tin.on('end', () => {
    transportEnded = true;
    if (onTransportEnd) onTransportEnd();
  });
  tin.on('error', (e) => fail(`transport: ${e.message}`));
  if (tout !== tin) tout.on('error', (e) => fail(`transport: ${e.message}`));
}
if (tin) attach();

function sendFrame(bytes) {
  const f = Buffer.alloc(2 + bytes.length);
  f.writeUInt16BE(bytes.length, 0);
  Buffer.from(bytes).copy(f, 2);
  tout.write(f);
}

createNoise((noise) => (started || Promise.resolve()).then(() => {
  if (listenPort !== null) attach();
  const C = noise.constants;
  let hs;
  try {
    hs = noise.HandshakeState(PROTOCOL, initiator ? C.NOISE_ROLE_INITIATOR : C.NOISE_ROLE_RESPONDER);
    hs.Initialize(prologue, null, null, psk);
  } catch (e) {
    fail(`handshake setup: ${e.message}`);
  }
  // Run the handshake's actions until it splits, waiting for frames to read.
  function step() {
    for (;;) {
      const action = hs.GetAction();
      if (action === C.NOISE_ACTION_WRITE_MESSAGE) {
        sendFrame(hs.WriteMessage(null));
      } else if (action === C.NOISE_ACTION_READ_MESSAGE) {
        onFrame = (msg) => {
          onFrame = null;
          try {
            hs.ReadMessage(msg, true);
          } catch (e) {
            fail(`handshake failed: ${e.message}`);
          }
          step();
        };
        onTransportEnd = () => fail('handshake failed: the peer closed the connection');
        if (transportEnded) onTransportEnd();
        drainFrames();
        return;
      } else if (action === C.NOISE_ACTION_SPLIT) {
        const h = Buffer.from(hs.GetHandshakeHash()).toString('hex');
        if (hashFile) fs.writeFileSync(hashFile, `${h}\n`);
        const [send, recv] = hs.Split();
        stream(send, recv);
        return;
      } else {
        fail(`handshake failed (action ${action})`);
      }
    }
  }
  step();
}));

// After the handshake: records both ways until both streams ended.
function stream(send, recv) {
  const empty = new Uint8Array(0);
  let sentEnd = false;
  let peerEnded = false;

  function maybeDone() {
    if (sentEnd && peerEnded) process.exit(0);
  }
  function seal(type, payload) {
    const pt = new Uint8Array(1 + payload.length);
    pt[0] = type;
    pt.set(payload, 1);
    sendFrame(send.EncryptWithAd(empty, pt));
  }

  onFrame = (ct) => {
    if (peerEnded) return; // nothing counts after END
    let pt;
    try {
      pt = recv.DecryptWithAd(empty, ct);
    } catch (e) {
      fail(`record rejected: ${e.message}`);
    }
    if (pt.length < 1) fail('record rejected: empty');
    if (pt[0] === DATA) {
      fs.writeSync(1, pt.subarray(1));
    } else if (pt[0] === END && pt.length === 1) {
      peerEnded = true;
      maybeDone();
    } else {
      fail(`record rejected: type ${pt[0]}, ${pt.length} bytes`);
    }
  };
  onTransportEnd = () => {
    if (!peerEnded) fail('stream truncated: the transport closed before the END record');
  };
  drainFrames();
  if (transportEnded) onTransportEnd();

  // Key confirmation: an initiator's first record goes at once (an empty
  // one), so that a responder knows it holds the key before anything acts.
  if (initiator) seal(DATA, empty);
  process.stdin.on('data', (chunk) => {
    for (let off = 0; off < chunk.length; off += PLAIN_MAX)
      seal(DATA, chunk.subarray(off, off + PLAIN_MAX));
  });
  process.stdin.on('end', () => {
    seal(END, empty);
    tout.end(() => {
      sentEnd = true;
      maybeDone();
    });
  });
}
