/* The framers' hot loops in C: the optional accelerator (see framing/_accel.py).
 *
 * Two functions, no state: each takes a buffer (bytes, bytearray, memoryview:
 * anything with the buffer protocol) and a start position, cuts every whole
 * frame it finds into a new bytes object, and says where it stopped. Every
 * decision that is not "this frame is whole and valid, cut it" goes back to
 * the pure-Python code, which is the reference: it raises the errors, skips
 * oversize frames, holds partial frames. So this file never raises a framing
 * error, never allocates more than the frames it returns, and keeps nothing
 * between calls.
 *
 * split_length(data, pos, width, little, max_size, limit)
 *     -> (frames, pos, need)
 *   Frames of `| length (width bytes, unsigned) | body |`, header stripped.
 *   Stops at the first frame that is not whole, when `limit` frames were cut
 *   (limit < 0: no limit), or at a header announcing more than max_size.
 *   need >= 0: the header at pos was read; the frame is `need` bytes long
 *              (header included) and not all here.
 *   need == -1: fewer than `width` bytes at pos, or the limit was reached.
 *   need == -2: the header at pos announces a body over max_size, or too large
 *              for a Py_ssize_t to count (untouched: Python reads it again
 *              and raises, skips or waits, messages intact).
 *
 * split_delimited(data, start, delimiter, max_size, lines, keep, strict)
 *     -> (records, pos) or None
 *   Records ended by `delimiter` (lines=False), or by \n or \r\n (lines=True,
 *   the `Lines()` rule: a \r just before the \n belongs to the ending). The
 *   first record begins at 0; no delimiter (for lines: no \n) may begin
 *   before `start` (the caller knows its held bytes hold none: searching
 *   them again on every chunk would be quadratic in a long record).
 *   `pos` is where the unterminated rest begins. Returns None, having decided
 *   nothing, when a record (the unterminated rest included) is longer than
 *   max_size, or (strict lines) a line ends with a bare \n: the Python engine
 *   then judges the same bytes to the byte.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static unsigned long long
read_length(const unsigned char *p, int width, int little)
{
    unsigned long long value = 0;
    int i;
    if (little) {
        for (i = width - 1; i >= 0; i--) {
            value = (value << 8) | p[i];
        }
    }
    else {
        for (i = 0; i < width; i++) {
            value = (value << 8) | p[i];
        }
    }
    return value;
}

/* The arguments are read by hand (METH_FASTCALL, no format string): the call
   is made once per chunk, and with small chunks its overhead is measurable. */

static int
check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t want)
{
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
        return -1;
    }
    return 0;
}

/* (list, n) or (list, n, m) as a tuple; steals the list's reference. */
static PyObject *
pack(PyObject *list, Py_ssize_t n, Py_ssize_t m, int three)
{
    PyObject *result = PyTuple_New(three ? 3 : 2);
    if (result == NULL) {
        Py_DECREF(list);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, list);
    PyObject *a = PyLong_FromSsize_t(n);
    if (a == NULL) {
        Py_DECREF(result);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 1, a);
    if (three) {
        PyObject *b = PyLong_FromSsize_t(m);
        if (b == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyTuple_SET_ITEM(result, 2, b);
    }
    return result;
}

static PyObject *
split_length(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("split_length", nargs, 6) < 0) {
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long width = PyLong_AsLong(args[2]);
    int little = PyObject_IsTrue(args[3]);
    unsigned long long max_size = PyLong_AsUnsignedLongLong(args[4]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (width < 1 || width > 8 || pos < 0 || pos > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "split_length: width or pos out of range");
        return NULL;
    }
    PyObject *frames = PyList_New(0);
    if (frames == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)view.buf;
    const Py_ssize_t end = view.len;
    Py_ssize_t need = -1;
    Py_ssize_t count = 0;
    while (end - pos >= width && (limit < 0 || count < limit)) {
        unsigned long long body = read_length(data + pos, (int)width, little);
        if (body > max_size || body > (unsigned long long)(PY_SSIZE_T_MAX / 2)) {
            need = -2;
            break;
        }
        /* From here width + body fits a Py_ssize_t. */
        if ((unsigned long long)(end - pos - width) < body) {
            need = width + (Py_ssize_t)body;
            break;
        }
        PyObject *frame =
            PyBytes_FromStringAndSize((const char *)data + pos + width, (Py_ssize_t)body);
        if (frame == NULL || PyList_Append(frames, frame) < 0) {
            Py_XDECREF(frame);
            Py_DECREF(frames);
            PyBuffer_Release(&view);
            return NULL;
        }
        Py_DECREF(frame);
        pos += width + (Py_ssize_t)body;
        count++;
    }
    PyBuffer_Release(&view);
    return pack(frames, pos, need, 1);
}

/* The first occurrence of needle in data[from:end], or -1. */
static Py_ssize_t
find(const char *data, Py_ssize_t from, Py_ssize_t end, const char *needle, Py_ssize_t n)
{
    while (end - from >= n) {
        const char *hit = memchr(data + from, needle[0], (size_t)(end - from - n + 1));
        if (hit == NULL) {
            return -1;
        }
        Py_ssize_t at = hit - data;
        /* The common delimiters are one or two bytes (\r\n): compare in line,
           a call to memcmp per candidate costs as much as the search. */
        if (n == 1 || (n == 2 ? hit[1] == needle[1]
                              : memcmp(hit + 1, needle + 1, (size_t)(n - 1)) == 0)) {
            return at;
        }
        from = at + 1;
    }
    return -1;
}

static PyObject *
split_delimited(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (check_nargs("split_delimited", nargs, 7) < 0) {
        return NULL;
    }
    if (!PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "split_delimited: the delimiter must be bytes");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t max_size = PyLong_AsSsize_t(args[3]);
    int lines = PyObject_IsTrue(args[4]);
    int keep = PyObject_IsTrue(args[5]);
    int strict = PyObject_IsTrue(args[6]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *data = (const char *)view.buf;
    const char *needle = PyBytes_AS_STRING(args[2]);
    const Py_ssize_t end = view.len;
    const Py_ssize_t dlen = PyBytes_GET_SIZE(args[2]);
    PyObject *records = NULL;
    PyObject *result = NULL;
    Py_ssize_t pos = 0;
    if ((!lines && dlen < 1) || start < 0 || start > end) {
        PyErr_SetString(PyExc_ValueError, "split_delimited: empty delimiter or start out of range");
        goto done;
    }
    records = PyList_New(0);
    if (records == NULL) {
        goto done;
    }
    for (;;) {
        Py_ssize_t at, stop, size;
        Py_ssize_t from = pos > start ? pos : start;
        if (lines) {
            const char *hit = memchr(data + from, '\n', (size_t)(end - from));
            if (hit == NULL) {
                break;
            }
            at = hit - data;
            stop = at + 1;
            if (at > pos && data[at - 1] == '\r') {
                at--; /* \r\n: the longer ending, stripped whole */
            }
            else if (strict) {
                goto undecided; /* a bare \n: Python raises */
            }
        }
        else {
            at = find(data, from, end, needle, dlen);
            if (at < 0) {
                break;
            }
            stop = at + dlen;
        }
        size = at - pos;
        if (size > max_size) {
            goto undecided;
        }
        PyObject *record =
            PyBytes_FromStringAndSize(data + pos, (keep ? stop : at) - pos);
        if (record == NULL || PyList_Append(records, record) < 0) {
            Py_XDECREF(record);
            goto done;
        }
        Py_DECREF(record);
        pos = stop;
    }
    if (end - pos > max_size) {
        goto undecided; /* the unterminated rest may be too long already */
    }
    result = pack(records, pos, 0, 0); /* steals records */
    records = NULL;
    goto done;
undecided:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(records);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"split_length", (PyCFunction)(void (*)(void))split_length, METH_FASTCALL,
     "split_length(data, pos, width, little, max_size, limit) -> (frames, pos, need)"},
    {"split_delimited", (PyCFunction)(void (*)(void))split_delimited, METH_FASTCALL,
     "split_delimited(data, start, delimiter, max_size, lines, keep, strict)"
     " -> (records, pos) | None"},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "framing._speedups",
    .m_doc = "The framers' hot loops in C (optional; framing._accel chooses).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
