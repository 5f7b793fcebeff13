// The compiled part of the Python package `fp8llm` (fp8llm._core): the engine, its tensors, and
// fp8llm.Error, raised for every fp8llm::Error with its one-line message. Error derives from both
// ValueError (a bad tensor, name or parameter) and RuntimeError (a call the engine's state does not
// allow), so either catches it.
#include <pybind11/pybind11.h>

#include "core/error.h"
#include "tensor.h"

namespace fp8llm::python {
void bind_engine(pybind11::module_& m);
}  // namespace fp8llm::python

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "fp8llm: the engine's C++ API for Python (use the fp8llm package)";
  static PyObject* error = nullptr;
  const py::tuple bases =
      py::make_tuple(py::handle(PyExc_ValueError), py::handle(PyExc_RuntimeError));
  error = PyErr_NewExceptionWithDoc("fp8llm.Error",
                                    "A problem with a model, a tensor, a parameter or a call, "
                                    "named in one line.",
                                    bases.ptr(), nullptr);
  if (error == nullptr) throw py::error_already_set();
  m.attr("Error") = py::handle(error);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const fp8llm::Error& e) {
      PyErr_SetString(error, e.what());
    }
  });
  fp8llm::python::bind_tensor(m);
  fp8llm::python::bind_engine(m);
}
