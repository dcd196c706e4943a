/* The scheduler's weighted sum of clamped scores, in one pass (score_sum.py).

   In numpy the sum is four calls per scorer (clamp from below and above, weigh, add),
   each a pass over the candidates with its own call cost: ~15 us of a pick at 1,024
   candidates and ~60 us at 10,000 (docs/benchmarks.md, "Decision time"). Here each
   candidate's total is the same arithmetic in the same order, one loop. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* A buffer of native float64s? (numpy's float64 is "d"; any other format, numpy's.) */
static int
is_doubles(const Py_buffer *view)
{
    const char *format = view->format ? view->format : "B";
    return view->itemsize == 8
        && (strcmp(format, "d") == 0 || strcmp(format, "@d") == 0 || strcmp(format, "=d") == 0);
}

/* numpy's min(max(x, 0), 1): maximum and minimum give the first operand unless the
   comparison holds for the second, so NaN passes through and -0.0 stays -0.0. */
static inline double
clamp(double x)
{
    x = x < 0.0 ? 0.0 : x;
    return x > 1.0 ? 1.0 : x;
}

/* total[i], plus weight * clamp(score) for each of the `count` columns in order, for
   every i. `count` is a constant where it is inlined below: the loop over columns
   unrolls, each total stays in a register, and the selects become vector code. */
static inline void
add_clamped(double *restrict total, const double *const *restrict scores,
            const double *restrict weights, int count, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        double sum = total[i];
        for (int j = 0; j < count; j++) {
            sum = sum + weights[j] * clamp(scores[j][i]);
        }
        total[i] = sum;
    }
}

/* Up to BATCH columns a pass over the candidates. */
#define BATCH 4

/* Where the CPU has AVX2, its clone (4 doubles a vector, not SSE2's 2: ~10 us at
   10,000 candidates, not ~26); chosen once, when the module loads. x86-64 Linux only
   (clones need an x86 target and the loader's ifunc): elsewhere, one build for all. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(TRISKEL_NO_CLONES)
__attribute__((target_clones("avx2", "default")))
#endif
static void
add_batch(double *total, const double *const *scores, const double *weights, int count,
          Py_ssize_t n)
{
    switch (count) {
    case 1: add_clamped(total, scores, weights, 1, n); break;
    case 2: add_clamped(total, scores, weights, 2, n); break;
    case 3: add_clamped(total, scores, weights, 3, n); break;
    default: add_clamped(total, scores, weights, BATCH, n); break;
    }
}

/* clamped_sum(columns, weights, n) -> bytearray of n float64s, or None.

   total[i] = sum over j, in order, of weights[j] * min(max(columns[j][i], 0), 1), from
   0.0, the way numpy computes `total + w * minimum(maximum(s, 0.0), 1.0)`: NaN stays
   NaN, comparisons decide as numpy's do. None when a column is not a contiguous buffer
   of n float64s: the caller then sums it with numpy (which may broadcast or convert). */
static PyObject *
clamped_sum(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (columns, weights, n)");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    PyObject *columns = PySequence_Fast(args[0], "columns must be a sequence");
    if (columns == NULL) {
        return NULL;
    }
    PyObject *weights = PySequence_Fast(args[1], "weights must be a sequence");
    if (weights == NULL) {
        Py_DECREF(columns);
        return NULL;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(columns);
    PyObject *out = NULL;
    if (PySequence_Fast_GET_SIZE(weights) != count) {
        PyErr_SetString(PyExc_ValueError, "one weight per column");
        goto done;
    }
    out = PyByteArray_FromStringAndSize(NULL, n * 8);
    if (out == NULL) {
        goto done;
    }
    double *total = (double *)PyByteArray_AS_STRING(out);
    memset(total, 0, (size_t)n * 8);
    Py_buffer views[BATCH];
    const double *scores[BATCH];
    double batch_weights[BATCH];
    int held = 0; /* views held: added and released at BATCH, and at the end */
    for (Py_ssize_t j = 0; j <= count; j++) {
        if (held == BATCH || (j == count && held > 0)) {
            add_batch(total, scores, batch_weights, held, n);
            while (held > 0) {
                PyBuffer_Release(&views[--held]);
            }
        }
        if (j == count) {
            break;
        }
        double weight = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(weights, j));
        if (weight == -1.0 && PyErr_Occurred()) {
            Py_CLEAR(out);
            break;
        }
        Py_buffer *view = &views[held];
        PyObject *column = PySequence_Fast_GET_ITEM(columns, j);
        if (PyObject_GetBuffer(column, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            PyErr_Clear(); /* not a buffer: numpy's to sum */
            Py_SETREF(out, Py_NewRef(Py_None));
            break;
        }
        if (!is_doubles(view) || view->len != n * 8) {
            PyBuffer_Release(view);
            Py_SETREF(out, Py_NewRef(Py_None));
            break;
        }
        scores[held] = (const double *)view->buf;
        batch_weights[held++] = weight;
    }
    while (held > 0) { /* left by a break */
        PyBuffer_Release(&views[--held]);
    }
done:
    Py_DECREF(columns);
    Py_DECREF(weights);
    return out;
}

static PyMethodDef methods[] = {
    {"clamped_sum", (PyCFunction)(void (*)(void))clamped_sum, METH_FASTCALL,
     "clamped_sum(columns, weights, n) -> bytearray of float64s, or None (see score_sum.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_score_sum",
    .m_doc = "The scheduler's weighted sum of clamped scores (see score_sum.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__score_sum(void)
{
    return PyModule_Create(&module);
}
