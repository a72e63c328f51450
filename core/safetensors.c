/* safetensors.c: safetensors files (luagrad.h, "weights and datasets on disk"). Reading maps the
 * file privately (copy-on-write: nothing can write through to the file, and a kernel that writes
 * into a mapped buffer changes only its own pages), copies the header out to parse it with cJSON,
 * and checks every entry before anything is handed out. Writing packs the data as the reference
 * writer does and renames a finished temporary file into place. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes the little-endian data in place: a big-endian host needs byte swaps here"
#endif

enum { HEADER_ALIGN = 64, DATA_ALIGN = 64, CHUNK = 1 << 20 };
#define MAX_HEADER 100000000ull     /* the reference implementation's limit */
#define MAX_EXACT 9007199254740992.0 /* 2^53: JSON numbers are doubles in cJSON */

static const struct {
  const char *name;
  lg_dtype dt;
} dtypes[] = {{"BOOL", LG_DT_BOOL}, {"U8", LG_DT_UINT8},      {"I8", LG_DT_INT8},     {"U16", LG_DT_UINT16},
              {"I16", LG_DT_INT16}, {"U32", LG_DT_UINT32},    {"I32", LG_DT_INT32},   {"U64", LG_DT_UINT64},
              {"I64", LG_DT_INT64}, {"F16", LG_DT_FLOAT16},   {"BF16", LG_DT_BFLOAT16}, {"F32", LG_DT_FLOAT32},
              {"F64", LG_DT_FLOAT64}};
enum { NDTYPES = sizeof dtypes / sizeof dtypes[0] };

static const char *dtype_st_name(lg_dtype dt) {
  for (int i = 0; i < NDTYPES; i++) {
    if (dtypes[i].dt == dt) return dtypes[i].name;
  }
  return NULL;
}

/* The mapping of a file, shared by the open handle and the buffers that view it. */
typedef struct st_map {
  char *base;
  size_t len;
  uint32_t refcnt;
} st_map;

static void map_release(void *ud) {
  st_map *m = ud;
  if (--m->refcnt) return;
  munmap(m->base, m->len);
  free(m);
}

typedef struct st_entry {
  char *name;
  lg_dtype dtype;
  int32_t ndim;
  int64_t shape[LG_MAX_DIMS];
  int64_t begin, end; /* in the data section */
} st_entry;

struct lg_safetensors {
  char *path;
  st_map *map;
  int64_t data_off, data_len; /* the data section, in the file */
  st_entry *e;
  int64_t n;
  char **meta; /* key, value, key, value, ... */
  int64_t nmeta;
};

/* "(2,3)" into buf */
static const char *shape_str(const int64_t *shape, int32_t ndim, char *buf, size_t size) {
  size_t len = (size_t)snprintf(buf, size, "(");
  for (int32_t i = 0; i < ndim && len < size; i++)
    len += (size_t)snprintf(buf + len, size - len, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (len < size) snprintf(buf + len, size - len, ")");
  return buf;
}

/* element count * itemsize, or -1 on overflow */
static int64_t shape_bytes(const int64_t *shape, int32_t ndim, int32_t itemsize) {
  int64_t n = itemsize;
  for (int32_t i = 0; i < ndim; i++) {
    if (__builtin_mul_overflow(n, shape[i], &n)) return -1;
  }
  return n;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* a short text of a JSON value for messages */
static const char *json_text(const cJSON *v, char *buf, size_t size) {
  char *s = v ? cJSON_PrintUnformatted(v) : NULL;
  snprintf(buf, size, "%s", s ? s : "nothing");
  if (s && strlen(s) >= size && size > 4) memcpy(buf + size - 4, "...", 4);
  free(s);
  return buf;
}

static const char *json_kind(const cJSON *v) {
  if (cJSON_IsString(v)) return "string";
  if (cJSON_IsNumber(v)) return "number";
  if (cJSON_IsArray(v)) return "list";
  if (cJSON_IsObject(v)) return "object";
  if (cJSON_IsBool(v)) return "boolean";
  return "null";
}

/* an integer in [0, 2^53] */
static bool json_count(const cJSON *v, int64_t *out) {
  if (!cJSON_IsNumber(v)) return false;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= MAX_EXACT) || d != floor(d)) return false;
  *out = (int64_t)d;
  return true;
}

static lg_status map_file(lg_ctx *ctx, lg_safetensors *f) {
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: %s", f->path, strerror(errno));
  struct stat sb;
  lg_status st = LG_OK;
  if (fstat(fd, &sb) != 0) st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: %s", f->path, strerror(errno));
  else if (!S_ISREG(sb.st_mode)) st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: not a regular file", f->path);
  else if (sb.st_size < 8)
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: the file is %lld bytes, too short for the 8-byte header length",
                     f->path, (long long)sb.st_size);
  if (st == LG_OK && !(f->map = calloc(1, sizeof *f->map))) st = lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  if (st == LG_OK) {
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      st = lg_ctx_fail(ctx, LG_ERR_DEVICE, "safetensors %s: cannot map the file: %s", f->path, strerror(errno));
      free(f->map);
      f->map = NULL;
    } else {
      *f->map = (st_map){.base = p, .len = (size_t)sb.st_size, .refcnt = 1};
    }
  }
  close(fd);
  return st;
}

static int entry_by_begin(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int str_ptr_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static lg_status parse_metadata(lg_ctx *ctx, lg_safetensors *f, const cJSON *m) {
  char txt[80];
  if (!cJSON_IsObject(m))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: __metadata__ is a %s (%s), expected an object of strings",
                       f->path, json_kind(m), json_text(m, txt, sizeof txt));
  int64_t n = cJSON_GetArraySize(m);
  if (!(f->meta = calloc((size_t)(2 * n + 1), sizeof *f->meta)))
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  for (const cJSON *v = m->child; v; v = v->next) {
    if (!cJSON_IsString(v))
      return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: __metadata__: the value of '%s' is a %s (%s), expected a string",
                         f->path, v->string, json_kind(v), json_text(v, txt, sizeof txt));
    char **kv = f->meta + 2 * f->nmeta;
    if (!(kv[0] = strdup(v->string)) || !(kv[1] = strdup(v->valuestring)))
      return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
    f->nmeta++;
  }
  /* keys are unique */
  char **keys = malloc((size_t)(n ? n : 1) * sizeof *keys);
  if (!keys) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  for (int64_t i = 0; i < n; i++) keys[i] = f->meta[2 * i];
  qsort(keys, (size_t)n, sizeof *keys, str_ptr_cmp);
  lg_status st = LG_OK;
  for (int64_t i = 1; i < n && st == LG_OK; i++) {
    if (strcmp(keys[i - 1], keys[i]) == 0)
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: __metadata__: the key '%s' appears twice", f->path, keys[i]);
  }
  free(keys);
  return st;
}

static lg_status parse_entry(lg_ctx *ctx, lg_safetensors *f, const cJSON *v, st_entry *e) {
  char txt[80], sh[400];
  const char *name = v->string, *path = f->path;
  if (!(e->name = strdup(name))) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  if (!cJSON_IsObject(v))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': its entry is a %s (%s), expected an object", path,
                       name, json_kind(v), json_text(v, txt, sizeof txt));
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(v, "dtype");
  if (!cJSON_IsString(dt))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': \"dtype\" is %s, expected a string", path, name,
                       json_text(dt, txt, sizeof txt));
  int k = 0;
  while (k < NDTYPES && strcmp(dtypes[k].name, dt->valuestring) != 0) k++;
  if (k == NDTYPES)
    return lg_ctx_fail(ctx, LG_ERR_ARG,
                       "safetensors %s: tensor '%s': unknown dtype '%.40s' "
                       "(known: BOOL U8 I8 U16 I16 U32 I32 U64 I64 F16 BF16 F32 F64)",
                       path, name, dt->valuestring);
  e->dtype = dtypes[k].dt;
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(v, "shape");
  if (!cJSON_IsArray(shape))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': \"shape\" is %s, expected a list of sizes", path,
                       name, json_text(shape, txt, sizeof txt));
  int nd = cJSON_GetArraySize(shape);
  if (nd > LG_MAX_DIMS)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': the shape has %d dims, at most %d", path, name, nd,
                       LG_MAX_DIMS);
  e->ndim = nd;
  int i = 0;
  for (const cJSON *d = shape->child; d; d = d->next, i++) {
    if (!json_count(d, &e->shape[i]))
      return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': shape %s: size %d is %s, expected an integer >= 0",
                         path, name, json_text(shape, sh, sizeof sh), i + 1, json_text(d, txt, sizeof txt));
  }
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(v, "data_offsets");
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_count(offs->child, &e->begin) ||
      !json_count(offs->child->next, &e->end))
    return lg_ctx_fail(ctx, LG_ERR_ARG,
                       "safetensors %s: tensor '%s': \"data_offsets\" is %s, expected [begin, end] (integers >= 0)",
                       path, name, json_text(offs, txt, sizeof txt));
  if (e->end < e->begin)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': data_offsets [%lld, %lld] end before they begin", path,
                       name, (long long)e->begin, (long long)e->end);
  if (e->end > f->data_len)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': data_offsets [%lld, %lld] end beyond the data (%lld bytes)",
                       path, name, (long long)e->begin, (long long)e->end, (long long)f->data_len);
  int32_t size = lg_dtype_itemsize(e->dtype);
  int64_t want = shape_bytes(e->shape, e->ndim, size);
  if (want != e->end - e->begin) {
    shape_str(e->shape, e->ndim, sh, sizeof sh);
    if (want < 0)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': shape %s of %s overflows 64-bit sizes", path, name, sh,
                         dtypes[k].name);
    return lg_ctx_fail(ctx, LG_ERR_ARG,
                       "safetensors %s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, but shape %s of %s needs %lld",
                       path, name, (long long)e->begin, (long long)e->end, (long long)(e->end - e->begin), sh,
                       dtypes[k].name, (long long)want);
  }
  return LG_OK;
}

static lg_status parse_header(lg_ctx *ctx, lg_safetensors *f) {
  const char *path = f->path;
  uint64_t hlen;
  memcpy(&hlen, f->map->base, 8);
  uint64_t room = f->map->len - 8;
  if (hlen > MAX_HEADER)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: header length %llu is over the limit of %llu bytes", path,
                       (unsigned long long)hlen, MAX_HEADER);
  if (hlen > room)
    return lg_ctx_fail(ctx, LG_ERR_ARG,
                       "safetensors %s: header length %llu is larger than the file allows (%llu bytes after the length)",
                       path, (unsigned long long)hlen, (unsigned long long)room);
  f->data_off = 8 + (int64_t)hlen;
  f->data_len = (int64_t)(room - hlen);
  /* a NUL-terminated copy: the parser never reads past it, whatever the bytes */
  char *h = malloc(hlen + 1);
  if (!h) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors %s: out of memory for a header of %llu bytes", path,
                             (unsigned long long)hlen);
  memcpy(h, f->map->base + 8, hlen);
  h[hlen] = '\0';
  const char *nul = memchr(h, '\0', hlen), *end = NULL;
  cJSON *root = NULL;
  lg_status st = LG_OK;
  if (nul)
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: the header holds a NUL byte at byte %lld", path, (long long)(nul - h));
  else if (hlen == 0 || h[0] != '{')
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: the header does not start with '{' (a JSON object): \"%.20s\"", path, h);
  else if (!(root = cJSON_ParseWithLengthOpts(h, hlen, &end, 0)))
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: the header is not valid JSON (error at byte %lld: \"%.20s\")", path,
                     (long long)(end ? end - h : 0), end ? end : "");
  else if (end[strspn(end, " \t\r\n")])
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: the header has more than one JSON value (at byte %lld: \"%.20s\")", path,
                     (long long)(end - h), end);
  int64_t n = 0;
  const cJSON *meta = NULL;
  for (const cJSON *v = root ? root->child : NULL; v && st == LG_OK; v = v->next) {
    if (strcmp(v->string, "__metadata__") != 0) n++;
    else if (meta) st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: __metadata__ appears twice", path);
    else meta = v;
  }
  if (st == LG_OK && meta) st = parse_metadata(ctx, f, meta);
  if (st == LG_OK && !(f->e = calloc((size_t)(n ? n : 1), sizeof *f->e)))
    st = lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  for (const cJSON *v = root ? root->child : NULL; v && st == LG_OK; v = v->next) {
    if (v != meta) st = parse_entry(ctx, f, v, &f->e[f->n++]);
  }
  cJSON_Delete(root);
  free(h);
  if (st != LG_OK) return st;
  /* names are unique; entries do not overlap (empty ones overlap nothing) */
  char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
  if (!names) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  for (int64_t i = 0; i < n; i++) names[i] = f->e[i].name;
  qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
  for (int64_t i = 1; i < n && st == LG_OK; i++) {
    if (strcmp(names[i - 1], names[i]) == 0)
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s' appears twice in the header", path, names[i]);
  }
  free(names);
  qsort(f->e, (size_t)n, sizeof *f->e, entry_by_begin);
  const st_entry *last = NULL;
  for (int64_t i = 0; i < n && st == LG_OK; i++) {
    const st_entry *e = &f->e[i];
    if (e->begin == e->end) continue;
    if (last && e->begin < last->end)
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap", path,
                       last->name, (long long)last->begin, (long long)last->end, e->name, (long long)e->begin,
                       (long long)e->end);
    if (!last || e->end > last->end) last = e;
  }
  return st;
}

lg_status lg_safetensors_open(lg_ctx *ctx, const char *path, lg_safetensors **out) {
  *out = NULL;
  if (!path) return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors: no path");
  lg_safetensors *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors: out of memory");
  }
  lg_status st = map_file(ctx, f);
  if (st == LG_OK) st = parse_header(ctx, f);
  if (st != LG_OK) {
    lg_safetensors_close(f);
    return st;
  }
  *out = f;
  return LG_OK;
}

void lg_safetensors_close(lg_safetensors *f) {
  if (!f) return;
  for (int64_t i = 0; i < f->n; i++) free(f->e[i].name);
  free(f->e);
  for (int64_t i = 0; i < 2 * f->nmeta; i++) free(f->meta[i]);
  free(f->meta);
  if (f->map) map_release(f->map);
  free(f->path);
  free(f);
}

int64_t lg_safetensors_count(const lg_safetensors *f) { return f->n; }

void lg_safetensors_info(const lg_safetensors *f, int64_t i, lg_tensor_info *out) {
  const st_entry *e = &f->e[i];
  *out = (lg_tensor_info){.name = e->name, .dtype = e->dtype, .ndim = e->ndim, .shape = e->shape,
                          .offset = f->data_off + e->begin, .nbytes = e->end - e->begin};
}

int64_t lg_safetensors_metadata_count(const lg_safetensors *f) { return f->nmeta; }

void lg_safetensors_metadata(const lg_safetensors *f, int64_t i, const char **key, const char **value) {
  *key = f->meta[2 * i];
  *value = f->meta[2 * i + 1];
}

lg_status lg_safetensors_buffer(lg_ctx *ctx, lg_safetensors *f, int64_t i, lg_device *dev, lg_buffer **out) {
  *out = NULL;
  if (i < 0 || i >= f->n)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor %lld of %lld does not exist", f->path, (long long)i,
                       (long long)f->n);
  const st_entry *e = &f->e[i];
  char *p = f->map->base + f->data_off + e->begin;
  int64_t nbytes = e->end - e->begin;
  if (e->dtype == LG_DT_BOOL) {
    for (int64_t k = 0; k < nbytes; k++) {
      if ((unsigned char)p[k] > 1)
        return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors %s: tensor '%s': BOOL element %lld is %u, expected 0 or 1", f->path,
                           e->name, (long long)k + 1, (unsigned)(unsigned char)p[k]);
    }
  }
  if (dev->ops == &lg_cpu_device && (uintptr_t)p % DATA_ALIGN == 0) {
    f->map->refcnt++;
    lg_status st = lg_buffer_wrap(ctx, dev, p, nbytes, map_release, f->map, out);
    if (st != LG_OK) f->map->refcnt--;
    return st;
  }
  lg_status st = lg_buffer_new(ctx, dev, nbytes, out);
  if (st == LG_OK && nbytes && (st = lg_buffer_write(*out, 0, p, nbytes)) != LG_OK) {
    lg_buffer_release(*out);
    *out = NULL;
  }
  return st;
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct meta_pair {
  const char *key, *value;
} meta_pair;

static int pair_by_key(const void *a, const void *b) { return strcmp(((const meta_pair *)a)->key, ((const meta_pair *)b)->key); }

typedef struct save_item {
  const lg_tensor_entry *t;
  int32_t itemsize;
  int64_t nbytes, begin;
} save_item;

static int item_by_name(const void *a, const void *b) {
  return strcmp(((const save_item *)a)->t->name, ((const save_item *)b)->t->name);
}

/* the data order: itemsize descending, then name */
static int item_by_layout(const void *a, const void *b) {
  const save_item *x = a, *y = b;
  if (x->itemsize != y->itemsize) return x->itemsize > y->itemsize ? -1 : 1;
  return strcmp(x->t->name, y->t->name);
}

static lg_status check_entry(lg_ctx *ctx, const char *path, const lg_tensor_entry *t, save_item *it) {
  char sh[400], dn[64];
  if (!t->name) return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: a tensor has no name", path);
  if (strcmp(t->name, "__metadata__") == 0)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: a tensor cannot be named __metadata__", path);
  if (!dtype_st_name(t->dtype)) {
    lg_dtype_name(t->dtype, dn, sizeof dn);
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: tensor '%s' has dtype %s, which safetensors cannot hold", path,
                       t->name, dn);
  }
  if (t->ndim < 0 || t->ndim > LG_MAX_DIMS || (t->ndim && !t->shape))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: tensor '%s' has %d dims, expected 0 to %d", path, t->name,
                       (int)t->ndim, LG_MAX_DIMS);
  for (int32_t i = 0; i < t->ndim; i++) {
    if (t->shape[i] < 0)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: tensor '%s' has a negative size in shape %s", path, t->name,
                         shape_str(t->shape, t->ndim, sh, sizeof sh));
  }
  it->t = t;
  it->itemsize = lg_dtype_itemsize(t->dtype);
  it->nbytes = shape_bytes(t->shape, t->ndim, it->itemsize);
  int64_t have = t->buf ? lg_buffer_size(t->buf) : -1;
  if (it->nbytes < 0 || have != it->nbytes) {
    lg_dtype_name(t->dtype, dn, sizeof dn);
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: tensor '%s': shape %s of %s needs %lld bytes, its buffer holds %lld",
                       path, t->name, shape_str(t->shape, t->ndim, sh, sizeof sh), dn, (long long)it->nbytes,
                       (long long)have);
  }
  return LG_OK;
}

/* The header text: keys sorted, integers written as integers (cJSON raw values), then spaces so
 * that the data starts on a HEADER_ALIGN boundary. */
static lg_status make_header(lg_ctx *ctx, const char *path, save_item *items, int64_t n, const meta_pair *meta_pairs,
                             int64_t nmeta, char **out, size_t *len) {
  cJSON *root = cJSON_CreateObject(), *meta = NULL;
  bool ok = root != NULL;
  if (ok && nmeta > 0) ok = (meta = cJSON_AddObjectToObject(root, "__metadata__")) != NULL;
  for (int64_t i = 0; ok && i < nmeta; i++) ok = cJSON_AddStringToObject(meta, meta_pairs[i].key, meta_pairs[i].value) != NULL;
  char raw[40 + LG_MAX_DIMS * 21];
  for (int64_t i = 0; ok && i < n; i++) {
    const lg_tensor_entry *t = items[i].t;
    cJSON *e = cJSON_AddObjectToObject(root, t->name);
    ok = e && cJSON_AddStringToObject(e, "dtype", dtype_st_name(t->dtype));
    size_t l = (size_t)snprintf(raw, sizeof raw, "[");
    for (int32_t d = 0; d < t->ndim; d++)
      l += (size_t)snprintf(raw + l, sizeof raw - l, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    snprintf(raw + l, sizeof raw - l, "]");
    ok = ok && cJSON_AddRawToObject(e, "shape", raw);
    snprintf(raw, sizeof raw, "[%lld,%lld]", (long long)items[i].begin, (long long)(items[i].begin + items[i].nbytes));
    ok = ok && cJSON_AddRawToObject(e, "data_offsets", raw);
  }
  char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!s) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors save %s: out of memory", path);
  size_t l = strlen(s), padded = (8 + l + HEADER_ALIGN - 1) / HEADER_ALIGN * HEADER_ALIGN - 8;
  char *h = realloc(s, padded + 1);
  if (!h) {
    free(s);
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors save %s: out of memory", path);
  }
  memset(h + l, ' ', padded - l);
  h[padded] = '\0';
  *out = h;
  *len = padded;
  return LG_OK;
}

/* Write into a new file next to path (path.tmp-<pid>-<k>), then rename it to path. */
static lg_status write_file(lg_ctx *ctx, const char *path, char *tmp, size_t tsize, const char *header, size_t hlen,
                            const save_item *items, int64_t n) {
  int fd = -1;
  for (int k = 0; fd < 0 && k < 100; k++) {
    snprintf(tmp, tsize, "%s.tmp-%ld-%d", path, (long)getpid(), k);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: cannot create %s: %s", path, tmp, strerror(errno));
  FILE *fp = fdopen(fd, "wb");
  if (!fp) {
    close(fd);
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors save %s: %s", path, strerror(errno));
  }
  uint64_t hl = hlen;
  bool ok = fwrite(&hl, 8, 1, fp) == 1 && fwrite(header, 1, hlen, fp) == hlen;
  int64_t most = 0;
  for (int64_t i = 0; i < n; i++) most = items[i].nbytes > most ? items[i].nbytes : most;
  size_t csize = most < CHUNK ? (size_t)most : CHUNK;
  char *chunk = malloc(csize ? csize : 1);
  lg_status st = chunk ? LG_OK : lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors save %s: out of memory", path);
  for (int64_t i = 0; i < n && ok && st == LG_OK; i++) {
    for (int64_t off = 0; off < items[i].nbytes && ok && st == LG_OK; off += (int64_t)csize) {
      size_t c = items[i].nbytes - off < (int64_t)csize ? (size_t)(items[i].nbytes - off) : csize;
      st = lg_buffer_read(items[i].t->buf, off, chunk, (int64_t)c);
      ok = st == LG_OK && fwrite(chunk, 1, c, fp) == c;
    }
  }
  free(chunk);
  int err = ok ? 0 : errno;
  if (fclose(fp) != 0 && !err) err = errno, ok = false;
  if (st == LG_OK && !ok) st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: cannot write %s: %s", path, tmp, strerror(err));
  if (st == LG_OK && rename(tmp, path) != 0)
    st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: cannot rename %s into place: %s", path, tmp, strerror(errno));
  if (st != LG_OK) unlink(tmp);
  return st;
}

lg_status lg_safetensors_save(lg_ctx *ctx, const char *path, const lg_tensor_entry *tensors, int64_t n,
                              const char *const *meta_keys, const char *const *meta_values, int64_t nmeta) {
  if (!path) return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save: no path");
  if (n < 0 || nmeta < 0 || (n && !tensors) || (nmeta && (!meta_keys || !meta_values)))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: bad argument arrays (%lld tensors, %lld metadata)", path,
                       (long long)n, (long long)nmeta);
  save_item *items = calloc((size_t)(n ? n : 1), sizeof *items);
  meta_pair *pairs = calloc((size_t)(nmeta ? nmeta : 1), sizeof *pairs);
  lg_status st = items && pairs ? LG_OK : lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors save %s: out of memory", path);
  for (int64_t i = 0; i < nmeta && st == LG_OK; i++) {
    if (!meta_keys[i] || !meta_values[i])
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: metadata item %lld has no key or no value", path, (long long)i);
    pairs[i] = (meta_pair){meta_keys[i], meta_values[i]};
  }
  if (st == LG_OK) qsort(pairs, (size_t)nmeta, sizeof *pairs, pair_by_key);
  for (int64_t i = 1; i < nmeta && st == LG_OK; i++) {
    if (strcmp(pairs[i - 1].key, pairs[i].key) == 0)
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: the metadata key '%s' appears twice", path, pairs[i].key);
  }
  for (int64_t i = 0; i < n && st == LG_OK; i++) st = check_entry(ctx, path, &tensors[i], &items[i]);
  if (st == LG_OK) {
    qsort(items, (size_t)n, sizeof *items, item_by_name);
    for (int64_t i = 1; i < n && st == LG_OK; i++) {
      if (strcmp(items[i - 1].t->name, items[i].t->name) == 0)
        st = lg_ctx_fail(ctx, LG_ERR_ARG, "safetensors save %s: tensor '%s' appears twice", path, items[i].t->name);
    }
  }
  char *header = NULL, *tmp = NULL;
  size_t hlen = 0;
  if (st == LG_OK) {
    qsort(items, (size_t)n, sizeof *items, item_by_layout);
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) items[i].begin = at, at += items[i].nbytes;
    qsort(items, (size_t)n, sizeof *items, item_by_name);
    st = make_header(ctx, path, items, n, pairs, nmeta, &header, &hlen);
  }
  if (st == LG_OK) {
    qsort(items, (size_t)n, sizeof *items, item_by_layout);
    if (!(tmp = malloc(strlen(path) + 64))) st = lg_ctx_fail(ctx, LG_ERR_NOMEM, "safetensors save %s: out of memory", path);
  }
  if (st == LG_OK) st = write_file(ctx, path, tmp, strlen(path) + 64, header, hlen, items, n);
  free(tmp);
  free(header);
  free(pairs);
  free(items);
  return st;
}
