/*
 * The C reference decoder: the limit a Python decoder can be measured against.
 *
 * It decodes the same stream, cut into the same chunks, as the Python
 * contestants, the way a careful C decoder on a socket would: frames that lie
 * whole inside a chunk are delivered in place (a pointer and a length, no
 * copy); only the partial frame at a chunk's end is copied to a carry buffer
 * and completed from the next chunks.
 *
 *   usage: ref_decode MODE FRAMING STREAM_FILE CHUNKS_FILE REPEATS
 *     MODE     time: decode REPEATS times, print "best_ns frames checksum"
 *              dump: decode once, write every frame as <u32 LE length><payload>
 *                    to stdout, so the caller compares them with the expected
 *     FRAMING  len2 | len4 (big-endian length header) | lines (\n or \r\n,
 *              stripped, as framing.Lines) | crlf (\r\n, as Delimited(b"\r\n"))
 *     CHUNKS_FILE  the chunk sizes, native uint32, in order
 *
 * In time mode each frame still costs a delivery: its length and its first and
 * last byte go into a checksum (so the compiler cannot drop the work), as an
 * application would at least look at each message.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { LEN2, LEN4, LINES, CRLF };

static int mode_dump;
static uint64_t n_frames, checksum;
static unsigned char *dump_buf;
static size_t dump_len;

static inline void deliver(const unsigned char *p, size_t n) {
    n_frames++;
    if (mode_dump) {
        uint32_t len = (uint32_t)n;
        memcpy(dump_buf + dump_len, &len, 4);
        memcpy(dump_buf + dump_len + 4, p, n);
        dump_len += 4 + n;
    } else {
        checksum = checksum * 31 + n;
        if (n) checksum = (checksum * 31 + p[0]) * 31 + p[n - 1];
    }
}

static unsigned char *carry;
static size_t carry_len, carry_cap;

static void carry_add(const unsigned char *p, size_t n) {
    if (carry_len + n > carry_cap) {
        while (carry_len + n > carry_cap) carry_cap = carry_cap ? carry_cap * 2 : 65536;
        carry = realloc(carry, carry_cap);
        if (!carry) { perror("realloc"); exit(2); }
    }
    memcpy(carry + carry_len, p, n);
    carry_len += n;
}

static inline size_t header_value(const unsigned char *p, int width) {
    if (width == 2) return ((size_t)p[0] << 8) | p[1];
    return ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
}

/* Length-prefixed: complete the carried frame first, then walk the chunk in place. */
static void feed_length(const unsigned char *p, size_t n, int width) {
    if (carry_len) {
        if (carry_len < (size_t)width) {
            size_t take = (size_t)width - carry_len;
            if (take > n) take = n;
            carry_add(p, take);
            p += take; n -= take;
            if (carry_len < (size_t)width) return;
        }
        size_t need = (size_t)width + header_value(carry, width) - carry_len;
        size_t take = need < n ? need : n;
        carry_add(p, take);
        p += take; n -= take;
        if (take < need) return;
        deliver(carry + width, carry_len - width);
        carry_len = 0;
    }
    while (n >= (size_t)width) {
        size_t size = header_value(p, width);
        if (n - width < size) break;
        deliver(p + width, size);
        p += width + size; n -= width + size;
    }
    if (n) carry_add(p, n);
}

/* Delimited by \n (stripping a \r before it when lines) or by \r\n. */
static void feed_delimited(const unsigned char *p, size_t n, int kind) {
    const unsigned char *end = p + n;
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        /* Is there a \r just before the \n? It may be the carry's last byte. */
        int cr = nl > p ? nl[-1] == '\r' : (carry_len && carry[carry_len - 1] == '\r');
        if (kind == CRLF && !cr) {
            /* A bare \n is payload for \r\n framing: keep it (the rare, slow path). */
            carry_add(p, (size_t)(nl + 1 - p));
            p = nl + 1;
            continue;
        }
        if (carry_len) {
            carry_add(p, (size_t)(nl - p));
            deliver(carry, carry_len - (size_t)cr);
            carry_len = 0;
        } else {
            deliver(p, (size_t)(nl - p) - (size_t)cr);
        }
        p = nl + 1;
    }
    if (p < end) carry_add(p, (size_t)(end - p));
}

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(size ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) { perror(path); exit(2); }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s time|dump len2|len4|lines|crlf STREAM CHUNKS REPEATS\n", argv[0]);
        return 2;
    }
    mode_dump = strcmp(argv[1], "dump") == 0;
    int kind = !strcmp(argv[2], "len2") ? LEN2 : !strcmp(argv[2], "len4") ? LEN4
             : !strcmp(argv[2], "lines") ? LINES : CRLF;
    size_t stream_len, chunks_bytes;
    unsigned char *stream = read_file(argv[3], &stream_len);
    uint32_t *chunks = (uint32_t *)read_file(argv[4], &chunks_bytes);
    size_t n_chunks = chunks_bytes / 4;
    int repeats = mode_dump ? 1 : atoi(argv[5]);
    if (mode_dump) dump_buf = malloc(stream_len * 2 + 16);

    uint64_t best = UINT64_MAX;
    for (int r = 0; r < repeats; r++) {
        n_frames = 0; checksum = 0; carry_len = 0; dump_len = 0;
        uint64_t t0 = now_ns();
        const unsigned char *p = stream;
        for (size_t i = 0; i < n_chunks; i++) {
            size_t n = chunks[i];
            switch (kind) {
            case LEN2: feed_length(p, n, 2); break;
            case LEN4: feed_length(p, n, 4); break;
            default: feed_delimited(p, n, kind); break;
            }
            p += n;
        }
        uint64_t t = now_ns() - t0;
        if (t < best) best = t;
    }
    if (carry_len) { fprintf(stderr, "stream ended inside a frame\n"); return 1; }
    if (mode_dump) {
        fwrite(dump_buf, 1, dump_len, stdout);
    } else {
        printf("%llu %llu %llu\n", (unsigned long long)best,
               (unsigned long long)n_frames, (unsigned long long)checksum);
    }
    return 0;
}
