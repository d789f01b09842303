/*
 * pprof — writes a profile as a gzipped perftools.profiles.Profile
 * (proto/profile.proto), the format `go tool pprof`, Pyroscope and Parca
 * read.  One call over plain data: the caller describes samples as stacks of
 * symbolized frames and this file builds the tables pprof wants:
 *
 *   - string_table: every string once, "" at index 0;
 *   - function: one per distinct (name, file), ids from 1;
 *   - location: one per distinct physical frame (mapping, address and the
 *     same chain of inlined lines), ids from 1; a frame inlined into its
 *     caller is not a location of its own but one more Line of its caller's
 *     location, innermost first, which is how pprof shows inlining;
 *   - mapping: the caller's mappings in order, ids from 1 (mapping[0] is
 *     the main binary: pprof prints its file and build id as the profile's);
 *     has_functions / has_filenames / has_line_numbers / has_inline_frames
 *     say what the locations in that mapping carry.
 *
 * The sample types are parameters: CPU profiles use pprof_types_cpu
 * (samples/count, cpu/nanoseconds, period_type cpu/nanoseconds, period the
 * sampling interval in ns), heap profiles pprof_types_heap (Go's four:
 * alloc_objects/count, alloc_space/bytes, inuse_objects/count,
 * inuse_space/bytes, period_type space/bytes) or any subset or other list.
 *
 * Nothing is copied: every pointer in the input must stay valid during the
 * call only.  Output is deterministic (the gzip header carries no time or
 * name), so the same input gives the same bytes.
 */
#ifndef PA_PPROF_H
#define PA_PPROF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pprof_value_type {
    const char *type; /* "samples", "cpu", "alloc_space", ... */
    const char *unit; /* "count", "nanoseconds", "bytes", ... */
} pprof_value_type_t;

typedef struct pprof_mapping {
    uint64_t start, limit, offset; /* memory range and the file offset at start */
    const char *file;              /* path of the object, NULL = "" */
    const char *build_id;          /* hex, NULL = "" (none known) */
} pprof_mapping_t;

/* One frame of a stack.  A physical frame with inlined calls is several
 * pprof_frame_t in a row, innermost first, all with the same address and
 * mapping, every one but the last with inlined = 1 ("inlined into the frame
 * that follows"). */
typedef struct pprof_frame {
    const char *function; /* NULL: unsymbolized, the location has no Line */
    const char *file;     /* source file, NULL = "" */
    int64_t line;         /* 0 = unknown */
    uint64_t address;     /* the location's address (pprof shows it; the
                             caller decides whether return addresses are
                             kept as they are or moved into the call) */
    uint32_t mapping;     /* 1-based index into pprof_profile_t.mappings, 0 = none */
    uint8_t inlined;      /* inlined into the next frame of the stack */
} pprof_frame_t;

/* A label of a sample: a string (str != NULL) or a number with an optional
 * unit ("bytes", "nanoseconds"; NULL = none). */
typedef struct pprof_label {
    const char *key;
    const char *str;
    int64_t num;
    const char *num_unit;
} pprof_label_t;

typedef struct pprof_sample {
    const pprof_frame_t *frames; /* leaf first, inline frames expanded */
    size_t n_frames;
    const int64_t *values;       /* one per sample type */
    const pprof_label_t *labels; /* e.g. {"thread", "worker-1"} */
    size_t n_labels;
} pprof_sample_t;

typedef struct pprof_profile {
    const pprof_value_type_t *sample_types; /* at least one */
    size_t n_sample_types;
    const char *default_sample_type; /* the type pprof shows first; NULL = the
                                        last one (pprof's default) */
    pprof_value_type_t period_type;  /* {NULL, NULL} = not set */
    int64_t period;
    int64_t time_nanos;     /* start of collection, ns since the epoch; 0 = unknown */
    int64_t duration_nanos; /* 0 = unknown */
    const pprof_mapping_t *mappings; /* [0] = the main binary */
    size_t n_mappings;
    const pprof_sample_t *samples;
    size_t n_samples;
    const char *const *comments; /* free text lines pprof prints as comments */
    size_t n_comments;
} pprof_profile_t;

extern const pprof_value_type_t pprof_types_cpu[2];  /* samples/count, cpu/nanoseconds */
extern const pprof_value_type_t pprof_types_heap[4]; /* Go's order, see above */

/* Sets sample_types, period_type and period of a CPU profile sampled every
 * period_ns of CPU time: each sample's values are {samples, samples x
 * period_ns}. */
void pprof_set_cpu(pprof_profile_t *p, int64_t period_ns);

/* Sets the sample types to n consecutive entries of pprof_types_heap from
 * first (e.g. 0, 4 = all four; 2, 2 = inuse only), period_type space/bytes
 * and period rate (bytes between samples; 1 = every allocation). */
void pprof_set_heap(pprof_profile_t *p, size_t first, size_t n, int64_t rate);

/* The serialized Profile (not compressed) in a malloc'd buffer.  0,
 * -EINVAL (no sample type, a NULL values, a mapping index out of range, an
 * inlined frame with no frame after it or whose next frame has another
 * address or mapping, a label with no key), -EOVERFLOW (more than 2^32 - 1
 * strings, functions or locations), -ENOMEM. */
int pprof_encode(const pprof_profile_t *p, uint8_t **out, size_t *len);

/* The profile, gzipped, to f (which stays open) / to the file path
 * (created or truncated, mode 0644 less the umask).  0, the errors of
 * pprof_encode, -EIO when writing fails (or the errno of open/close). */
int pprof_write_gz(FILE *f, const pprof_profile_t *p);
int pprof_write_file(const char *path, const pprof_profile_t *p);

#endif
