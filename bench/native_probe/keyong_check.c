/* Probe for issue 21 (NOT shipped, NOT built by anything): how fast verification gets when SQLite hashes in C.
   Build: gcc -O2 -shared -fPIC -o keyong_check.so keyong_check.c -lcrypto  (OpenSSL SHA256: SHA-NI).
   keyong_check(prev_hash, hash, body, names) -> the Merkle leaf sha256(0x00 || fromhex(hash)), or NULL unless: both hashes
   are 64 hex digits, body is valid UTF-8, names holds no byte JSON would escape, and
   sha256(fromhex(prev_hash) || body) == fromhex(hash). Loaded into ADBC SQLite by fastscan_native.patch; see CONTRACT_verify21.md. */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#include <openssl/sha.h>
#include <string.h>
#include <stdint.h>
static int unhex64(const unsigned char *s, int n, unsigned char *out) {
  if (!s || n != 64) return 0;
  for (int i = 0; i < 32; i++) {
    int v = 0;
    for (int k = 0; k < 2; k++) {
      int c = s[2 * i + k], d;
      if (c >= '0' && c <= '9') d = c - '0'; else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10; else return 0;
      v = v * 16 + d;
    }
    out[i] = (unsigned char)v;
  }
  return 1;
}
static int utf8_ok(const unsigned char *s, int n) {  /* strict: no overlong, no surrogate, <= U+10FFFF */
  int i = 0;
  while (i < n) {
    uint64_t w;
    while (i + 8 <= n) { memcpy(&w, s + i, 8); if (w & 0x8080808080808080ULL) break; i += 8; }
    if (i >= n) break;
    unsigned c = s[i];
    if (c < 0x80) { i++; continue; }
    int len; unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (i + len > n) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (int k = 2; k < len; k++) if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    i += len;
  }
  return 1;
}
static void check(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  unsigned char prev[32], stored[32], got[32], leaf[33];
  const unsigned char *p = sqlite3_value_text(argv[0]); int pn = sqlite3_value_bytes(argv[0]);
  const unsigned char *h = sqlite3_value_text(argv[1]); int hn = sqlite3_value_bytes(argv[1]);
  const unsigned char *b = sqlite3_value_text(argv[2]); int bn = sqlite3_value_bytes(argv[2]);
  const unsigned char *m = sqlite3_value_text(argv[3]); int mn = sqlite3_value_bytes(argv[3]);
  if (!b || !m || !unhex64(p, pn, prev) || !unhex64(h, hn, stored) || !utf8_ok(b, bn)) { sqlite3_result_null(ctx); return; }
  for (int i = 0; i < mn; i++) if (m[i] < 0x20 || m[i] == '"' || m[i] == '\\') { sqlite3_result_null(ctx); return; }
  SHA256_CTX c; SHA256_Init(&c); SHA256_Update(&c, prev, 32); SHA256_Update(&c, b, bn); SHA256_Final(got, &c);
  if (memcmp(got, stored, 32)) { sqlite3_result_null(ctx); return; }
  leaf[0] = 0; memcpy(leaf + 1, stored, 32); SHA256(leaf, 33, got);
  sqlite3_result_blob(ctx, got, 32, SQLITE_TRANSIENT);
}
int sqlite3_keyongcheck_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  return sqlite3_create_function(db, "keyong_check", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC, 0, check, 0, 0);
}
