// SHA3-256 (FIPS 202) over bytes, and the CIDv1 of a canonical form
// (base32-lower, raw codec 0x55, multihash sha3-256 0x16). Small rather
// than fast: lanes are BigInts.
const M = (1n << 64n) - 1n;
const RC: bigint[] = [];
{
  let r = 1;
  for (let i = 0; i < 24; i++) {
    let c = 0n;
    for (let j = 0; j < 7; j++) {
      r = ((r << 1) ^ ((r >> 7) * 0x71)) % 256;
      if (r & 2) c ^= 1n << ((1n << BigInt(j)) - 1n);
    }
    RC.push(c);
  }
}
const rot = (x: bigint, n: number) => (n ? ((x << BigInt(n)) | (x >> BigInt(64 - n))) & M : x);

function keccakF(s: bigint[]) {
  for (let round = 0; round < 24; round++) {
    const c = [0, 1, 2, 3, 4].map(x => s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20]);
    for (let x = 0; x < 5; x++) {
      const d = c[(x + 4) % 5] ^ rot(c[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) s[y + x] ^= d;
    }
    // rho and pi
    let x = 1, y = 0, cur = s[1];
    for (let t = 0; t < 24; t++) {
      const nx = y, ny = (2 * x + 3 * y) % 5;
      const tmp = s[nx + 5 * ny];
      s[nx + 5 * ny] = rot(cur, ((t + 1) * (t + 2) / 2) % 64);
      cur = tmp;
      x = nx; y = ny;
    }
    for (let yy = 0; yy < 25; yy += 5) {
      const row = s.slice(yy, yy + 5);
      for (let xx = 0; xx < 5; xx++) s[yy + xx] = row[xx] ^ (~row[(xx + 1) % 5] & M & row[(xx + 2) % 5]);
    }
    s[0] ^= RC[round];
  }
}

export function sha3_256(data: Uint8Array): Uint8Array {
  const rate = 136;
  const padded = new Uint8Array(Math.ceil((data.length + 1) / rate) * rate);
  padded.set(data);
  padded[data.length] ^= 0x06;
  padded[padded.length - 1] ^= 0x80;
  const s: bigint[] = new Array(25).fill(0n);
  for (let off = 0; off < padded.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let b = 7; b >= 0; b--) lane = (lane << 8n) | BigInt(padded[off + i * 8 + b]);
      s[i] ^= lane;
    }
    keccakF(s);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((s[i >> 3] >> BigInt(8 * (i & 7))) & 0xffn);
  return out;
}

export const hex = (b: Uint8Array) => Array.from(b, x => x.toString(16).padStart(2, '0')).join('');

export function cidOf(canonical: string): string {
  const digest = sha3_256(new TextEncoder().encode(canonical));
  const bytes = new Uint8Array(36);
  bytes.set([1, 0x55, 0x16, 0x20]);
  bytes.set(digest, 4);
  const alpha = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = 'b', bits = 0, acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) { out += alpha[(acc >> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits) out += alpha[(acc << (5 - bits)) & 31];
  return out;
}
