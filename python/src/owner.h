// Owners of memory shared between Python objects and C++: a Python object kept alive from C++
// (freed with the interpreter lock held, wherever the last reference goes, e.g. a framework's
// DLPack deleter on a thread of its own).
#pragma once

#include <pybind11/pybind11.h>

#include <memory>

namespace fp8llm::python {

inline std::shared_ptr<void> keep_alive(pybind11::object object) {
  return std::shared_ptr<void>(new pybind11::object(std::move(object)), [](void* p) {
    pybind11::gil_scoped_acquire gil;
    delete static_cast<pybind11::object*>(p);
  });
}

}  // namespace fp8llm::python
