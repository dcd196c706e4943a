/* The prefix indexes' compiled structures (holders.py, history_lru.py, worker_blocks.py):
   HolderMap, block hash -> the worker slots holding it, and the prefix walk over it;
   BlockLru, one worker's routing history; BlockSet, the blocks one worker holds. Each
   has a Python form with the same methods, used where this was not built.

   HolderMap

   The compiled form of `holders.PyHolderMap` (same methods, same answers; the tests
   drive both with the same operations). Why compiled: in Python every block of a
   prefix walk costs a dict look-up and a big-int AND or two, ~0.3-1 us a block at
   1,024-10,000 workers, and the walk was most of a pick at fleet scale
   (docs/benchmarks.md, "Decision time"). Here a block costs a probe and an AND over
   the few words still active.

   Storage: an open-addressing table (linear probing, deletion by backward shift) of
   (hash, value) pairs, 16 bytes each. A value is
     < 0   one holder, ~value its slot (most blocks: a prompt's own suffix);
     > 0   a pointer to a bitmap of two holders or more: words[0] is the number of
           64-bit words that follow, bit s of the words the slot s;
     0     an empty place in the table.
   No Python object is held: the type needs no GC support. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint64_t key;
    int64_t value;
} Entry;

/* One open-addressing array of (hash, value) pairs, value 0 marking an empty place. */
typedef struct {
    Entry *entries;
    size_t capacity; /* a power of two, or 0 */
    size_t size;
} Places;

/* A table that grows a little at a time. Doubling in one go rehashed every entry on
   whichever insert crossed the load limit: up to 4 ms at 131,072 places and 19 ms at
   a million, the slowest picks of the decision bench (docs/benchmarks.md, "Decision
   time"). Instead:
   - the doubled array is allocated when the table is 5/8 full and zeroed a little per
     insert, so the fresh pages' faults come a few at a time, in order (zeroed at the
     switch, or faulted by random inserts after it, they came together: a record of
     128 new blocks paid ~60 faults);
   - at 3/4 it takes the inserts, and the outgrown array's entries move to it a few
     places per insert (as Redis's dict rehashes incrementally); until they all have,
     a look-up the new array does not answer reads the old one too. */
typedef struct {
    Places now;    /* inserts go here */
    Places moving; /* the outgrown array (entries NULL when none) */
    /* moving's places from `start` (an empty one) on, cyclically, `done` of them, are
       empty: whole runs of entries left together, so the runs still there keep their
       probe sequences. */
    size_t start, done;
    Entry *next;         /* the doubled array being zeroed (NULL when none) */
    size_t next_zeroed;  /* its bytes zeroed so far */
} Table;

typedef struct {
    PyObject_HEAD
    Table t; /* first after the header, as TableObject's */
    /* depths_at's per-slot depths (zeros between walks) and the slots a walk wrote. */
    int64_t *scratch;
    size_t *written;
    size_t scratch_size;
} HolderMap;

#define MIN_CAPACITY 64

/* Block hashes are xxh3 digests already, but tests and callers may use small ints:
   spread them (splitmix64's finalizer). */
static inline uint64_t
mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t *
bitmap_of(int64_t value)
{
    return (uint64_t *)(intptr_t)value;
}

/* A block hash from Python (an int in [0, 2**64)): 0, or -1 with the error set. */
static inline int
key_of(PyObject *item, uint64_t *key)
{
    *key = PyLong_AsUnsignedLongLong(item);
    return *key == (uint64_t)-1 && PyErr_Occurred() ? -1 : 0;
}

/* The types here take no constructor arguments: 0, or -1 with TypeError set. */
static int
no_arguments(PyObject *args, PyObject *kwargs, const char *type_name)
{
    if (PyTuple_GET_SIZE(args) || (kwargs && PyDict_GET_SIZE(kwargs))) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", type_name);
        return -1;
    }
    return 0;
}

static Entry *
places_find(const Places *p, uint64_t key)
{
    if (p->capacity == 0) {
        return NULL;
    }
    size_t mask = p->capacity - 1;
    size_t i = (size_t)mix(key) & mask;
    for (;;) {
        Entry *e = &p->entries[i];
        if (e->value == 0) {
            return NULL;
        }
        if (e->key == key) {
            return e;
        }
        i = (i + 1) & mask;
    }
}

/* Could `key` be in the outgrown array? Not when its home place was emptied already: a
   look-up would stop there (this skips reading it). */
static inline int
may_be_moving(const Table *t, uint64_t key)
{
    if (t->moving.entries == NULL) {
        return 0;
    }
    size_t mask = t->moving.capacity - 1;
    return ((((size_t)mix(key) & mask) - t->start) & mask) >= t->done;
}

static Entry *
find(const Table *t, uint64_t key)
{
    Entry *e = places_find(&t->now, key);
    return e != NULL || !may_be_moving(t, key) ? e : places_find(&t->moving, key);
}

static inline size_t
table_size(const Table *t)
{
    return t->now.size + t->moving.size;
}

/* `arg in` a table: 1 or 0, or -1 with the error set. */
static int
table_contains(const Table *t, PyObject *arg)
{
    uint64_t key;
    if (key_of(arg, &key) < 0) {
        return -1;
    }
    return find(t, key) != NULL;
}

/* Places (key, value) in an array known not to hold key and to have room. */
static void
place(Places *p, uint64_t key, int64_t value)
{
    size_t mask = p->capacity - 1;
    size_t i = (size_t)mix(key) & mask;
    while (p->entries[i].value != 0) {
        i = (i + 1) & mask;
    }
    p->entries[i].key = key;
    p->entries[i].value = value;
    p->size++;
}

/* Is `home` cyclically within (hole, j]? Then the entry at j may not move to hole. */
static inline int
stays(size_t home, size_t hole, size_t j)
{
    if (hole <= j) {
        return home > hole && home <= j;
    }
    return home > hole || home <= j;
}

/* Removes the entry at `e` by shifting back the ones after it that may move: no
   tombstones, so look-ups stay short however many entries come and go. */
static void
places_erase(Places *p, Entry *e)
{
    size_t mask = p->capacity - 1;
    size_t hole = (size_t)(e - p->entries);
    size_t j = hole;
    for (;;) {
        j = (j + 1) & mask;
        Entry *next = &p->entries[j];
        if (next->value == 0) {
            break;
        }
        if (!stays((size_t)mix(next->key) & mask, hole, j)) {
            p->entries[hole] = *next;
            hole = j;
        }
    }
    p->entries[hole].key = 0;
    p->entries[hole].value = 0;
    p->size--;
}

static void
erase(Table *t, Entry *e)
{
    int in_now = e >= t->now.entries && e < t->now.entries + t->now.capacity;
    places_erase(in_now ? &t->now : &t->moving, e);
}

/* Places of the outgrown array each insert visits (a run under way is finished, so a
   few more at times): with 8, all have moved long before the next doubling. */
#define MOVE_PER_INSERT 8
/* Bytes of the doubled array each insert zeroes: it is 32 bytes per place of `now`,
   and from 5/8 to 3/4 full come capacity/8 inserts, so 512 are done by 11/16. */
#define ZERO_PER_INSERT 512

/* Moves entries from the outgrown array to the current one, visiting at least `budget`
   places (all when SIZE_MAX); frees the outgrown array once it is empty. A run of
   entries (places between two empty ones) moves as a whole: an entry left behind
   without the ones before it would no longer be found. */
static void
move_some(Table *t, size_t budget)
{
    Places *from = &t->moving;
    size_t mask = from->capacity - 1;
    while (budget > 0 && t->done < from->capacity) {
        Entry *e = &from->entries[(t->start + t->done) & mask];
        if (e->value == 0) {
            t->done++;
            budget--;
            continue;
        }
        while (e->value != 0) {
            place(&t->now, e->key, e->value);
            e->key = 0;
            e->value = 0;
            from->size--;
            t->done++;
            budget -= budget > 0;
            e = &from->entries[(t->start + t->done) & mask];
        }
    }
    if (t->done >= from->capacity) {
        PyMem_Free(from->entries);
        memset(from, 0, sizeof(*from));
        t->start = t->done = 0;
    }
}

/* Zeroes up to `budget` more bytes of the doubled array (`total` bytes). */
static void
zero_some(Table *t, size_t total, size_t budget)
{
    size_t count = total - t->next_zeroed < budget ? total - t->next_zeroed : budget;
    memset((char *)t->next + t->next_zeroed, 0, count);
    t->next_zeroed += count;
}

/* Room for one more entry in `now` (at most 3/4 full with every entry of both arrays);
   -1 with MemoryError set. */
static int
reserve_one(Table *t)
{
    if (t->moving.entries != NULL) {
        move_some(t, MOVE_PER_INSERT);
    }
    size_t wanted = table_size(t) + 1;
    size_t doubled = t->now.capacity ? t->now.capacity * 2 : MIN_CAPACITY;
    if (t->next == NULL && wanted * 8 > t->now.capacity * 5) {
        t->next = PyMem_Malloc(doubled * sizeof(Entry));
        if (t->next == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->next_zeroed = 0;
    }
    if (t->next != NULL) {
        zero_some(t, doubled * sizeof(Entry), ZERO_PER_INSERT);
    }
    if (wanted * 4 <= t->now.capacity * 3) {
        return 0;
    }
    if (t->moving.entries != NULL) {
        move_some(t, SIZE_MAX); /* not reached with MOVE_PER_INSERT: a safety net */
    }
    zero_some(t, doubled * sizeof(Entry), SIZE_MAX);
    if (t->now.entries != NULL) {
        t->moving = t->now;
        t->start = 0;
        while (t->moving.entries[t->start].value != 0) { /* at most 3/4 full: one is empty */
            t->start++;
        }
        t->done = 0;
    }
    t->now.entries = t->next;
    t->now.capacity = doubled;
    t->now.size = 0;
    t->next = NULL;
    return 0;
}

/* Adds (key, value), key known not to be in the table: 0, or -1 with MemoryError set. */
static int
insert(Table *t, uint64_t key, int64_t value)
{
    if (reserve_one(t) < 0) {
        return -1;
    }
    place(&t->now, key, value);
    return 0;
}

/* The entry after index *i across both arrays (*i from 0), or NULL past the last. */
static Entry *
table_next(const Table *t, size_t *i)
{
    for (; *i < t->now.capacity + t->moving.capacity; (*i)++) {
        Entry *e = *i < t->now.capacity ? &t->now.entries[*i]
                                         : &t->moving.entries[*i - t->now.capacity];
        if (e->value != 0) {
            (*i)++;
            return e;
        }
    }
    return NULL;
}

static void
table_free(Table *t)
{
    PyMem_Free(t->now.entries);
    PyMem_Free(t->moving.entries);
    PyMem_Free(t->next);
    memset(t, 0, sizeof(*t));
}

/* A zeroed bitmap of `num_words` words; NULL with MemoryError set. */
static uint64_t *
bitmap_new(size_t num_words)
{
    uint64_t *bits = PyMem_Calloc(num_words + 1, sizeof(uint64_t));
    if (bits == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    bits[0] = num_words;
    return bits;
}

/* `bits` with `slot` set, grown when the slot is past its words (maybe moved). */
static uint64_t *
bitmap_with(uint64_t *bits, size_t slot)
{
    size_t word = slot / 64;
    if (word >= bits[0]) {
        size_t old = (size_t)bits[0];
        uint64_t *grown = PyMem_Realloc(bits, (word + 2) * sizeof(uint64_t));
        if (grown == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        memset(grown + 1 + old, 0, (word + 1 - old) * sizeof(uint64_t));
        grown[0] = word + 1;
        bits = grown;
    }
    bits[1 + word] |= 1ULL << (slot % 64);
    return bits;
}

static int
check_value(uint64_t *bits)
{
    /* A pointer is stored as a positive int64: true of user-space addresses here. */
    if ((intptr_t)bits <= 0) {
        PyErr_SetString(PyExc_SystemError, "HolderMap: unexpected bitmap address");
        return -1;
    }
    return 0;
}

static int
parse_key_slot(PyObject *const *args, Py_ssize_t nargs, uint64_t *key, Py_ssize_t *slot)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (block_hash, slot)");
        return -1;
    }
    if (key_of(args[0], key) < 0) {
        return -1;
    }
    *slot = PyLong_AsSsize_t(args[1]);
    if (*slot == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*slot < 0) {
        PyErr_SetString(PyExc_ValueError, "slot must be >= 0");
        return -1;
    }
    return 0;
}

/* The worker at `slot` holds the block `key`: 0, or -1 with MemoryError set. */
static int
holder_add(HolderMap *m, uint64_t key, size_t slot)
{
    Entry *e = find(&m->t, key);
    if (e == NULL) {
        return insert(&m->t, key, ~(int64_t)slot);
    }
    if (e->value < 0) {
        size_t lone = (size_t)~e->value;
        if (lone == slot) {
            return 0;
        }
        size_t highest = lone > slot ? lone : slot;
        uint64_t *bits = bitmap_new(highest / 64 + 1);
        if (bits == NULL) {
            return -1;
        }
        bits[1 + lone / 64] |= 1ULL << (lone % 64);
        bits[1 + slot / 64] |= 1ULL << (slot % 64);
        if (check_value(bits) < 0) {
            PyMem_Free(bits);
            return -1;
        }
        e->value = (int64_t)(intptr_t)bits;
        return 0;
    }
    uint64_t *bits = bitmap_with(bitmap_of(e->value), slot);
    if (bits == NULL) {
        return -1; /* the old bitmap is still in place */
    }
    if (check_value(bits) < 0) {
        return -1;
    }
    e->value = (int64_t)(intptr_t)bits;
    return 0;
}

/* The worker at `slot` no longer holds the block `key` (no entry once nobody does). */
static void
holder_discard(HolderMap *m, uint64_t key, size_t slot)
{
    Entry *e = find(&m->t, key);
    if (e == NULL) {
        return;
    }
    if (e->value < 0) {
        if ((size_t)~e->value == slot) {
            erase(&m->t, e);
        }
        return;
    }
    uint64_t *bits = bitmap_of(e->value);
    size_t num_words = (size_t)bits[0];
    if (slot / 64 < num_words) {
        bits[1 + slot / 64] &= ~(1ULL << (slot % 64));
    }
    /* Two holders or more stay a bitmap; one becomes a lone slot; none, no entry. */
    size_t count = 0, last = 0;
    for (size_t w = 0; w < num_words && count < 2; w++) {
        uint64_t word = bits[1 + w];
        if (word) {
            count += (size_t)__builtin_popcountll(word);
            last = w * 64 + (size_t)__builtin_ctzll(word);
        }
    }
    if (count >= 2) {
        return;
    }
    PyMem_Free(bits);
    if (count == 1) {
        e->value = ~(int64_t)last;
    }
    else {
        erase(&m->t, e);
    }
}

static PyObject *
HolderMap_add(HolderMap *m, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t key;
    Py_ssize_t slot;
    if (parse_key_slot(args, nargs, &key, &slot) < 0 || holder_add(m, key, (size_t)slot) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
HolderMap_discard(HolderMap *m, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t key;
    Py_ssize_t slot;
    if (parse_key_slot(args, nargs, &key, &slot) < 0) {
        return NULL;
    }
    holder_discard(m, key, (size_t)slot);
    Py_RETURN_NONE;
}

static PyObject *
HolderMap_mask(HolderMap *m, PyObject *arg)
{
    uint64_t key;
    if (key_of(arg, &key) < 0) {
        return NULL;
    }
    Entry *e = find(&m->t, key);
    if (e == NULL) {
        return PyLong_FromLong(0);
    }
    size_t num_words;
    const uint64_t *words;
    uint64_t lone_word;
    if (e->value < 0) { /* 1 << slot, through the same byte path as a bitmap */
        size_t lone = (size_t)~e->value;
        num_words = 1;
        lone_word = 1ULL << (lone % 64);
        if (lone >= 64) {
            PyObject *one = PyLong_FromLong(1), *shift = PyLong_FromSize_t(lone);
            PyObject *mask = (one && shift) ? PyNumber_Lshift(one, shift) : NULL;
            Py_XDECREF(one);
            Py_XDECREF(shift);
            return mask;
        }
        words = &lone_word;
    }
    else {
        uint64_t *bits = bitmap_of(e->value);
        num_words = (size_t)bits[0];
        words = bits + 1;
    }
    unsigned char *bytes = PyMem_Malloc(num_words * 8);
    if (bytes == NULL) {
        return PyErr_NoMemory();
    }
    for (size_t w = 0; w < num_words; w++) { /* little-endian whatever the machine */
        for (int b = 0; b < 8; b++) {
            bytes[w * 8 + (size_t)b] = (unsigned char)(words[w] >> (8 * b));
        }
    }
    PyObject *raw = PyBytes_FromStringAndSize((const char *)bytes, (Py_ssize_t)(num_words * 8));
    PyMem_Free(bytes);
    if (raw == NULL) {
        return NULL;
    }
    PyObject *mask = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "Os", raw, "little");
    Py_DECREF(raw);
    return mask;
}

/* Where a walk writes each slot's depth: `depths` (per slot, zeros where none is
   written), and when `written` is set, the slots written (to clear them after). */
typedef struct {
    int64_t *depths;
    size_t *written;
    size_t num_written;
} Sink;

/* Writes `depth` for every slot set in `stopped` (the word at index w). A depth of 0
   is what every slot reads already: nothing to write. */
static inline void
stop_word(Sink *sink, size_t w, uint64_t stopped, int64_t depth)
{
    if (depth == 0) {
        return;
    }
    while (stopped) {
        size_t slot = w * 64 + (size_t)__builtin_ctzll(stopped);
        sink->depths[slot] = depth;
        if (sink->written != NULL) {
            sink->written[sink->num_written++] = slot;
        }
        stopped &= stopped - 1;
    }
}

/* The active mask (an int, slots below num_slots) as words; NULL with an error set. */
static uint64_t *
active_words(PyObject *active, size_t num_words)
{
    PyObject *raw = PyObject_CallMethod(active, "to_bytes", "ns", (Py_ssize_t)(num_words * 8), "little");
    if (raw == NULL) {
        return NULL;
    }
    uint64_t *words = PyMem_Calloc(num_words ? num_words : 1, sizeof(uint64_t));
    if (words == NULL) {
        Py_DECREF(raw);
        PyErr_NoMemory();
        return NULL;
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(raw);
    for (size_t w = 0; w < num_words; w++) {
        uint64_t word = 0;
        for (int b = 0; b < 8; b++) {
            word |= (uint64_t)bytes[w * 8 + (size_t)b] << (8 * b);
        }
        words[w] = word;
    }
    Py_DECREF(raw);
    return words;
}

/* How many blocks ahead a walk or a record asks the cache for a hash's table place:
   the probe's miss then overlaps the work on the blocks before it. */
#define PREFETCH_AHEAD 4

/* Asks the cache for the table place of the hash at items[i], if there is one (a bad
   hash is skipped here and refused when its turn comes, as without this). */
static inline void
prefetch(const Table *t, PyObject *const *items, Py_ssize_t i, Py_ssize_t count)
{
    if (i >= count || t->now.capacity == 0) {
        return;
    }
    uint64_t key;
    if (key_of(items[i], &key) < 0) {
        PyErr_Clear();
        return;
    }
    __builtin_prefetch(&t->now.entries[(size_t)mix(key) & (t->now.capacity - 1)]);
}

/* The prefix walk: from block 0, each slot of `active` (num_words words, consumed)
   stops at its first block it does not hold; its depth goes to `sink`. 0 or -1 with
   an error set (a hash that is not an int in [0, 2**64)). */
static int
walk(const HolderMap *m, PyObject *hashes, uint64_t *active, size_t num_words, Sink *sink)
{
    size_t lo = 0, hi = num_words; /* the words holding active slots: [lo, hi) */
    while (lo < hi && active[lo] == 0) {
        lo++;
    }
    while (hi > lo && active[hi - 1] == 0) {
        hi--;
    }
    Py_ssize_t num_blocks = PySequence_Fast_GET_SIZE(hashes);
    PyObject **items = PySequence_Fast_ITEMS(hashes);
    Py_ssize_t depth = 0;
    for (; depth < num_blocks && lo < hi; depth++) {
        prefetch(&m->t, items, depth + PREFETCH_AHEAD, num_blocks);
        uint64_t key;
        if (key_of(items[depth], &key) < 0) {
            return -1;
        }
        const Entry *e = find(&m->t, key);
        if (e != NULL && e->value < 0) { /* one holder: only its bit can stay */
            size_t lone = (size_t)~e->value;
            for (size_t w = lo; w < hi; w++) {
                uint64_t still = w == lone / 64 ? active[w] & (1ULL << (lone % 64)) : 0;
                stop_word(sink, w, active[w] & ~still, depth);
                active[w] = still;
            }
        }
        else {
            const uint64_t *held = NULL;
            size_t held_words = 0;
            if (e != NULL) {
                const uint64_t *bits = bitmap_of(e->value);
                held = bits + 1;
                held_words = (size_t)bits[0];
            }
            for (size_t w = lo; w < hi; w++) {
                uint64_t still = w < held_words ? active[w] & held[w] : 0;
                stop_word(sink, w, active[w] & ~still, depth);
                active[w] = still;
            }
        }
        while (lo < hi && active[lo] == 0) {
            lo++;
        }
        while (hi > lo && active[hi - 1] == 0) {
            hi--;
        }
    }
    for (size_t w = lo; w < hi; w++) { /* still matching after the last block */
        stop_word(sink, w, active[w], depth);
    }
    return 0;
}

static int
parse_walk(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *num_slots, PyObject **hashes,
           uint64_t **active)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (block_hashes, active, num_slots or positions)");
        return -1;
    }
    if (*num_slots < 0) {
        PyErr_SetString(PyExc_ValueError, "num_slots must be >= 0");
        return -1;
    }
    *active = active_words(args[1], ((size_t)*num_slots + 63) / 64);
    if (*active == NULL) {
        return -1;
    }
    *hashes = PySequence_Fast(args[0], "block_hashes must be a sequence");
    if (*hashes == NULL) {
        PyMem_Free(*active);
        return -1;
    }
    return 0;
}

/* depths_bytes(block_hashes, active, num_slots) -> bytearray of num_slots + 1 int64s:
   per slot among the set bits of the int `active`, the leading blocks of
   `block_hashes` it holds; 0 for the other slots and the spare last one. */
static PyObject *
HolderMap_depths(HolderMap *m, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t num_slots = nargs == 3 ? PyLong_AsSsize_t(args[2]) : 0;
    if (num_slots == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *hashes;
    uint64_t *active;
    if (parse_walk(args, nargs, &num_slots, &hashes, &active) < 0) {
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (num_slots + 1) * 8);
    int failed = out == NULL;
    if (!failed) {
        Sink sink = {(int64_t *)PyByteArray_AS_STRING(out), NULL, 0};
        memset(sink.depths, 0, (size_t)(num_slots + 1) * 8);
        failed = walk(m, hashes, active, ((size_t)num_slots + 63) / 64, &sink) < 0;
    }
    Py_DECREF(hashes);
    PyMem_Free(active);
    if (failed) {
        Py_XDECREF(out);
        return NULL;
    }
    return out;
}

/* depths_at(block_hashes, active, positions, num_slots) -> bytearray of float64s: the
   depths of `depths_bytes` at `positions` (a buffer of int64 slots, -1 reading 0), as
   a candidate column. Only the slots written are touched: no array per slot is
   built or cleared (at 10,000 workers that was most of a walk). */
static PyObject *
HolderMap_depths_at(HolderMap *m, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "expected (block_hashes, active, positions, num_slots)");
        return NULL;
    }
    Py_ssize_t num_slots = PyLong_AsSsize_t(args[3]);
    if (num_slots == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer positions;
    if (PyObject_GetBuffer(args[2], &positions, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return NULL;
    }
    /* 64-bit signed integers: numpy's int64 is "l" here ("q" where long is 32 bits). */
    const char *format = positions.format ? positions.format : "B";
    char code = format[0] && format[1] && strchr("@=<", format[0]) ? format[1] : format[0];
    if (positions.itemsize != 8 || (code != 'l' && code != 'q')) {
        PyBuffer_Release(&positions);
        PyErr_SetString(PyExc_ValueError, "positions must be int64s");
        return NULL;
    }
    PyObject *hashes;
    uint64_t *active;
    if (parse_walk(args, 3, &num_slots, &hashes, &active) < 0) {
        PyBuffer_Release(&positions);
        return NULL;
    }
    PyObject *out = NULL;
    /* Kept between walks, all zeros in between: only what a walk writes is cleared. */
    if ((size_t)num_slots > m->scratch_size) {
        int64_t *depths = PyMem_Calloc((size_t)num_slots, sizeof(int64_t));
        size_t *written = PyMem_Malloc((size_t)num_slots * sizeof(size_t));
        if (depths == NULL || written == NULL) {
            PyMem_Free(depths);
            PyMem_Free(written);
            PyErr_NoMemory();
            goto done;
        }
        PyMem_Free(m->scratch);
        PyMem_Free(m->written);
        m->scratch = depths;
        m->written = written;
        m->scratch_size = (size_t)num_slots;
    }
    Sink sink = {m->scratch, m->written, 0};
    if (walk(m, hashes, active, ((size_t)num_slots + 63) / 64, &sink) < 0) {
        goto clear;
    }
    Py_ssize_t num_candidates = positions.len / 8;
    out = PyByteArray_FromStringAndSize(NULL, num_candidates * 8);
    if (out == NULL) {
        goto clear;
    }
    const int64_t *at = (const int64_t *)positions.buf;
    double *column = (double *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < num_candidates; i++) {
        int64_t slot = at[i];
        column[i] = slot >= 0 && slot < num_slots ? (double)sink.depths[slot] : 0.0;
    }
clear:
    for (size_t i = 0; i < sink.num_written; i++) {
        sink.depths[sink.written[i]] = 0;
    }
done:
    Py_DECREF(hashes);
    PyMem_Free(active);
    PyBuffer_Release(&positions);
    return out;
}

/* HolderMap and BlockSet both begin with a Table after the object header: their
   length, `in` and constructor are the same code. tp_alloc zeroes the object, so an
   empty table (and HolderMap's empty scratch) needs nothing more. */
typedef struct {
    PyObject_HEAD
    Table t;
} TableObject;

static Py_ssize_t
TableObject_len(PyObject *self)
{
    return (Py_ssize_t)table_size(&((TableObject *)self)->t);
}

static int
TableObject_contains(PyObject *self, PyObject *arg)
{
    return table_contains(&((TableObject *)self)->t, arg);
}

static PyObject *
TableObject_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    const char *dot = strrchr(type->tp_name, '.');
    if (no_arguments(args, kwargs, dot ? dot + 1 : type->tp_name) < 0) {
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

static PySequenceMethods TableObject_as_sequence = {
    .sq_length = TableObject_len,
    .sq_contains = TableObject_contains,
};

static void
HolderMap_dealloc(HolderMap *m)
{
    size_t i = 0;
    for (Entry *e; (e = table_next(&m->t, &i)) != NULL;) {
        if (e->value > 0) {
            PyMem_Free(bitmap_of(e->value));
        }
    }
    table_free(&m->t);
    PyMem_Free(m->scratch);
    PyMem_Free(m->written);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyMethodDef HolderMap_methods[] = {
    {"add", (PyCFunction)(void (*)(void))HolderMap_add, METH_FASTCALL,
     "add(block_hash, slot): the worker at slot holds the block."},
    {"discard", (PyCFunction)(void (*)(void))HolderMap_discard, METH_FASTCALL,
     "discard(block_hash, slot): it no longer does (no entry once nobody does)."},
    {"mask", (PyCFunction)HolderMap_mask, METH_O,
     "mask(block_hash) -> int: the holders' bitmask (0 when none)."},
    {"depths_bytes", (PyCFunction)(void (*)(void))HolderMap_depths, METH_FASTCALL,
     "depths_bytes(block_hashes, active, num_slots) -> bytearray of int64 depths."},
    {"_depths_at", (PyCFunction)(void (*)(void))HolderMap_depths_at, METH_FASTCALL,
     "_depths_at(block_hashes, active, positions, num_slots) -> bytearray of float64s."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject HolderMapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "triskel.router.scheduling.producers._holder_map.HolderMap",
    .tp_basicsize = sizeof(HolderMap),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Block hash -> holder slots, with the prefix walk (see holders.py).",
    .tp_new = TableObject_new,
    .tp_dealloc = (destructor)HolderMap_dealloc,
    .tp_methods = HolderMap_methods,
    .tp_as_sequence = &TableObject_as_sequence,
};

/* ---- BlockLru: one worker's routing history, block hash -> time recorded, oldest first.

   The compiled form of `history_lru.PyBlockLru` (same methods, same order, same
   answers). An OrderedDict rebuilt its table and node index as it grew and, full,
   every time its deleted entries filled it: O(size) on whichever pick came then
   (docs/benchmarks.md, "Where a p99 comes from"). Here the list is arrays of nodes
   (a free list reuses them) and the hash table is the holder map's (hash -> node + 1,
   deleting by backward shift, growing a little per insert): no compaction ever. */

typedef struct {
    PyObject_HEAD
    Table t; /* block hash -> its node + 1 */
    uint64_t *keys; /* per node */
    double *times;
    int32_t *prev, *next;
    size_t num_nodes; /* nodes allocated */
    int32_t oldest, newest, free; /* -1: none */
} BlockLru;

/* A free node, the arrays grown when none is; -1 with MemoryError set. */
static int
lru_reserve_one(BlockLru *l)
{
    if (l->free < 0) {
        size_t num_nodes = l->num_nodes ? l->num_nodes * 2 : MIN_CAPACITY;
        if (num_nodes > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "BlockLru: too many blocks");
            return -1;
        }
        uint64_t *keys = PyMem_Realloc(l->keys, num_nodes * sizeof(uint64_t));
        if (keys != NULL) {
            l->keys = keys;
        }
        double *times = keys ? PyMem_Realloc(l->times, num_nodes * sizeof(double)) : NULL;
        if (times != NULL) {
            l->times = times;
        }
        int32_t *prev = times ? PyMem_Realloc(l->prev, num_nodes * sizeof(int32_t)) : NULL;
        if (prev != NULL) {
            l->prev = prev;
        }
        int32_t *next = prev ? PyMem_Realloc(l->next, num_nodes * sizeof(int32_t)) : NULL;
        if (next == NULL) {
            PyErr_NoMemory(); /* what was grown stays, unused: the sizes are unchanged */
            return -1;
        }
        l->next = next;
        for (size_t n = l->num_nodes; n < num_nodes; n++) { /* the new nodes, free */
            l->next[n] = n + 1 < num_nodes ? (int32_t)(n + 1) : -1;
        }
        l->free = (int32_t)l->num_nodes;
        l->num_nodes = num_nodes;
    }
    return 0;
}

static void
lru_unlink(BlockLru *l, int32_t node)
{
    int32_t before = l->prev[node], after = l->next[node];
    if (before >= 0) {
        l->next[before] = after;
    }
    else {
        l->oldest = after;
    }
    if (after >= 0) {
        l->prev[after] = before;
    }
    else {
        l->newest = before;
    }
}

static void
lru_link_newest(BlockLru *l, int32_t node)
{
    l->prev[node] = l->newest;
    l->next[node] = -1;
    if (l->newest >= 0) {
        l->next[l->newest] = node;
    }
    else {
        l->oldest = node;
    }
    l->newest = node;
}

/* Records `key` at `now`, newest: 1 when it was not there, 0 when moved; -1 on error. */
static int
lru_touch(BlockLru *l, uint64_t key, double now)
{
    Entry *e = find(&l->t, key);
    if (e != NULL) {
        int32_t found = (int32_t)(e->value - 1);
        lru_unlink(l, found);
        lru_link_newest(l, found);
        l->times[found] = now;
        return 0;
    }
    if (lru_reserve_one(l) < 0) {
        return -1;
    }
    int32_t node = l->free;
    if (insert(&l->t, key, (int64_t)node + 1) < 0) {
        return -1;
    }
    l->free = l->next[node];
    l->keys[node] = key;
    l->times[node] = now;
    lru_link_newest(l, node);
    return 1;
}

/* Forgets `key` (known to be there) from the table and the list. */
static void
lru_remove(BlockLru *l, uint64_t key)
{
    Entry *e = find(&l->t, key);
    int32_t node = (int32_t)(e->value - 1);
    erase(&l->t, e);
    lru_unlink(l, node);
    l->next[node] = l->free;
    l->free = node;
}

/* Drops the `count` oldest entries, each from `holders` at `slot` too. */
static void
lru_drop_oldest(BlockLru *l, size_t count, HolderMap *holders, size_t slot)
{
    while (count-- > 0 && l->oldest >= 0) {
        uint64_t key = l->keys[l->oldest];
        lru_remove(l, key);
        holder_discard(holders, key, slot);
    }
}

static HolderMap *holder_arg(PyObject *arg);

static int
parse_holders_slot(PyObject *holders_arg, PyObject *slot_arg, HolderMap **holders, size_t *slot)
{
    *holders = holder_arg(holders_arg);
    if (*holders == NULL) {
        return -1;
    }
    Py_ssize_t value = PyLong_AsSsize_t(slot_arg);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError, "slot must be >= 0");
        return -1;
    }
    *slot = (size_t)value;
    return 0;
}

/* A time and (holders, slot) from three consecutive arguments: 0, or -1 with the error
   set. */
static int
parse_time_holders_slot(PyObject *const *args, double *time, HolderMap **holders, size_t *slot)
{
    *time = PyFloat_AsDouble(args[0]);
    if (*time == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    return parse_holders_slot(args[1], args[2], holders, slot);
}

/* record(block_hashes, now, holders, slot, capacity): each hash newest at `now` (a new
   one added to `holders` at `slot`), then the oldest dropped down to `capacity`. */
static PyObject *
BlockLru_record(BlockLru *l, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "expected (block_hashes, now, holders, slot, capacity)");
        return NULL;
    }
    double now;
    HolderMap *holders;
    size_t slot;
    if (parse_time_holders_slot(args + 1, &now, &holders, &slot) < 0) {
        return NULL;
    }
    Py_ssize_t capacity = PyLong_AsSsize_t(args[4]);
    if (capacity == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *hashes = PySequence_Fast(args[0], "block_hashes must be a sequence");
    if (hashes == NULL) {
        return NULL;
    }
    Py_ssize_t num_blocks = PySequence_Fast_GET_SIZE(hashes);
    PyObject **items = PySequence_Fast_ITEMS(hashes);
    for (Py_ssize_t i = 0; i < num_blocks; i++) {
        prefetch(&l->t, items, i + PREFETCH_AHEAD, num_blocks);
        prefetch(&holders->t, items, i + PREFETCH_AHEAD, num_blocks);
        uint64_t key;
        if (key_of(items[i], &key) < 0) {
            Py_DECREF(hashes);
            return NULL;
        }
        int added = lru_touch(l, key, now);
        if (added < 0) {
            Py_DECREF(hashes);
            return NULL;
        }
        if (added && holder_add(holders, key, slot) < 0) {
            lru_remove(l, key); /* not recorded at all: both stay as they were */
            Py_DECREF(hashes);
            return NULL;
        }
    }
    Py_DECREF(hashes);
    size_t size = table_size(&l->t);
    if (capacity >= 0 && size > (size_t)capacity) {
        lru_drop_oldest(l, size - (size_t)capacity, holders, slot);
    }
    Py_RETURN_NONE;
}

/* expire(oldest_live, holders, slot) -> int: drops the entries recorded at or before
   `oldest_live` (from the oldest on), each from `holders` too; how many. */
static PyObject *
BlockLru_expire(BlockLru *l, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (oldest_live, holders, slot)");
        return NULL;
    }
    double oldest_live;
    HolderMap *holders;
    size_t slot;
    if (parse_time_holders_slot(args, &oldest_live, &holders, &slot) < 0) {
        return NULL;
    }
    size_t count = 0;
    while (l->oldest >= 0 && l->times[l->oldest] <= oldest_live) {
        lru_drop_oldest(l, 1, holders, slot);
        count++;
    }
    return PyLong_FromSize_t(count);
}

/* drop_all(holders, slot): forgets every entry, each from `holders` too. */
static PyObject *
BlockLru_drop_all(BlockLru *l, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (holders, slot)");
        return NULL;
    }
    HolderMap *holders;
    size_t slot;
    if (parse_holders_slot(args[0], args[1], &holders, &slot) < 0) {
        return NULL;
    }
    lru_drop_oldest(l, table_size(&l->t), holders, slot);
    Py_RETURN_NONE;
}

static PyObject *
BlockLru_oldest_time(BlockLru *l, PyObject *Py_UNUSED(ignored))
{
    if (l->oldest < 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(l->times[l->oldest]);
}

/* items() -> [(hash, time)], oldest first (for tests). */
static PyObject *
BlockLru_items(BlockLru *l, PyObject *Py_UNUSED(ignored))
{
    PyObject *items = PyList_New(0);
    for (int32_t n = l->oldest; items != NULL && n >= 0; n = l->next[n]) {
        PyObject *item = Py_BuildValue("(Kd)", (unsigned long long)l->keys[n], l->times[n]);
        if (item == NULL || PyList_Append(items, item) < 0) {
            Py_XDECREF(item);
            Py_CLEAR(items);
            break;
        }
        Py_DECREF(item);
    }
    return items;
}

static Py_ssize_t
BlockLru_len(BlockLru *l)
{
    return (Py_ssize_t)table_size(&l->t);
}

static int
BlockLru_contains(BlockLru *l, PyObject *arg)
{
    uint64_t key;
    if (key_of(arg, &key) < 0) {
        return -1;
    }
    return find(&l->t, key) != NULL;
}

static PyObject *
BlockLru_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (no_arguments(args, kwargs, "BlockLru") < 0) {
        return NULL;
    }
    BlockLru *l = (BlockLru *)type->tp_alloc(type, 0);
    if (l != NULL) {
        l->oldest = l->newest = l->free = -1;
    }
    return (PyObject *)l;
}

static void
BlockLru_dealloc(BlockLru *l)
{
    table_free(&l->t);
    PyMem_Free(l->keys);
    PyMem_Free(l->times);
    PyMem_Free(l->prev);
    PyMem_Free(l->next);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyMethodDef BlockLru_methods[] = {
    {"record", (PyCFunction)(void (*)(void))BlockLru_record, METH_FASTCALL,
     "record(block_hashes, now, holders, slot, capacity)"},
    {"expire", (PyCFunction)(void (*)(void))BlockLru_expire, METH_FASTCALL,
     "expire(oldest_live, holders, slot) -> int"},
    {"drop_all", (PyCFunction)(void (*)(void))BlockLru_drop_all, METH_FASTCALL,
     "drop_all(holders, slot)"},
    {"oldest_time", (PyCFunction)BlockLru_oldest_time, METH_NOARGS,
     "oldest_time() -> float | None"},
    {"items", (PyCFunction)BlockLru_items, METH_NOARGS, "items() -> [(hash, time)], oldest first"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods BlockLru_as_sequence = {
    .sq_length = (lenfunc)BlockLru_len,
    .sq_contains = (objobjproc)BlockLru_contains,
};

static PyTypeObject BlockLruType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "triskel.router.scheduling.producers._holder_map.BlockLru",
    .tp_basicsize = sizeof(BlockLru),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One worker's routing history, oldest first (see history_lru.py).",
    .tp_new = BlockLru_new,
    .tp_dealloc = (destructor)BlockLru_dealloc,
    .tp_methods = BlockLru_methods,
    .tp_as_sequence = &BlockLru_as_sequence,
};

/* ---- BlockSet: the blocks one worker holds (the precise index's, for removal).

   The compiled form of `worker_blocks.PyBlockSet`: a table of 64-bit hashes (the
   holder map's table, every value 1), 16 bytes a place, where a dict used as a set
   cost ~37 bytes a block (docs/benchmarks.md, "Prefix index memory"). */

typedef struct {
    PyObject_HEAD
    Table t; /* first after the header, as TableObject's */
} BlockSet;

static int parse_holders_slot(PyObject *holders_arg, PyObject *slot_arg, HolderMap **holders,
                              size_t *slot);

/* add_all / discard_all (`adding` 1 / 0) of (block_hashes, holders, slot): each hash in
   the set, a new one added to `holders` at `slot`; or out of it, one that was in it out
   of `holders` too. */
static PyObject *
BlockSet_apply(BlockSet *b, PyObject *const *args, Py_ssize_t nargs, int adding)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (block_hashes, holders, slot)");
        return NULL;
    }
    HolderMap *holders;
    size_t slot;
    if (parse_holders_slot(args[1], args[2], &holders, &slot) < 0) {
        return NULL;
    }
    PyObject *hashes = PySequence_Fast(args[0], "block_hashes must be a sequence");
    if (hashes == NULL) {
        return NULL;
    }
    Py_ssize_t num_blocks = PySequence_Fast_GET_SIZE(hashes);
    PyObject **items = PySequence_Fast_ITEMS(hashes);
    int failed = 0;
    for (Py_ssize_t i = 0; i < num_blocks && !failed; i++) {
        uint64_t key;
        if (key_of(items[i], &key) < 0) {
            failed = 1;
            break;
        }
        Entry *e = find(&b->t, key);
        if (!adding) {
            if (e != NULL) {
                erase(&b->t, e);
                holder_discard(holders, key, slot);
            }
            continue;
        }
        if (e != NULL) {
            continue;
        }
        if (insert(&b->t, key, 1) < 0) {
            failed = 1;
            break;
        }
        if (holder_add(holders, key, slot) < 0) {
            erase(&b->t, find(&b->t, key)); /* not added at all: both stay as they were */
            failed = 1;
        }
    }
    Py_DECREF(hashes);
    if (failed) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
BlockSet_add_all(BlockSet *b, PyObject *const *args, Py_ssize_t nargs)
{
    return BlockSet_apply(b, args, nargs, 1);
}

static PyObject *
BlockSet_discard_all(BlockSet *b, PyObject *const *args, Py_ssize_t nargs)
{
    return BlockSet_apply(b, args, nargs, 0);
}

/* drop_all(holders, slot): empties the set, each hash out of `holders` at `slot`. */
static PyObject *
BlockSet_drop_all(BlockSet *b, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (holders, slot)");
        return NULL;
    }
    HolderMap *holders;
    size_t slot;
    if (parse_holders_slot(args[0], args[1], &holders, &slot) < 0) {
        return NULL;
    }
    size_t i = 0;
    for (Entry *e; (e = table_next(&b->t, &i)) != NULL;) {
        holder_discard(holders, e->key, slot);
    }
    table_free(&b->t);
    Py_RETURN_NONE;
}

static void
BlockSet_dealloc(BlockSet *b)
{
    table_free(&b->t);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyMethodDef BlockSet_methods[] = {
    {"add_all", (PyCFunction)(void (*)(void))BlockSet_add_all, METH_FASTCALL,
     "add_all(block_hashes, holders, slot)"},
    {"discard_all", (PyCFunction)(void (*)(void))BlockSet_discard_all, METH_FASTCALL,
     "discard_all(block_hashes, holders, slot)"},
    {"drop_all", (PyCFunction)(void (*)(void))BlockSet_drop_all, METH_FASTCALL,
     "drop_all(holders, slot)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BlockSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "triskel.router.scheduling.producers._holder_map.BlockSet",
    .tp_basicsize = sizeof(BlockSet),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The blocks one worker holds (see worker_blocks.py).",
    .tp_new = TableObject_new,
    .tp_dealloc = (destructor)BlockSet_dealloc,
    .tp_methods = BlockSet_methods,
    .tp_as_sequence = &TableObject_as_sequence,
};

static HolderMap *
holder_arg(PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &HolderMapType)) {
        PyErr_SetString(PyExc_TypeError, "holders must be a compiled HolderMap");
        return NULL;
    }
    return (HolderMap *)arg;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_holder_map",
    .m_doc = "The prefix indexes' compiled structures (see holders.py).",
    .m_size = -1,
};

/* Readies `type` and adds it to `mod` under `name`: 0, or -1 with the error set. */
static int
add_type(PyObject *mod, PyTypeObject *type, const char *name)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(mod, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__holder_map(void)
{
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) {
        return NULL;
    }
    if (add_type(mod, &HolderMapType, "HolderMap") < 0
        || add_type(mod, &BlockLruType, "BlockLru") < 0
        || add_type(mod, &BlockSetType, "BlockSet") < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
