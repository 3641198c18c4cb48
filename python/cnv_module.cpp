// The Python module's native half (`cnv._cnv`): cnv::Model behind pybind11. The
// Python half (python/cnv/__init__.py) gives it its interface; this file stays thin:
// arrays in and out, errors as (kind, message) pairs, the GIL released while kernels
// run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>

#include "cnv/Io.h"
#include "cnv/cnv.h"
#include "compiler/Compiler.h"
#include "compiler/Report.h"
#include "compiler/port/PytorchPort.h"
#include "runtime/src/ModelFactory.h"

namespace py = pybind11;

namespace {

// Raised to Python as cnv._cnv.NativeError(kind, message, rendered); __init__.py turns it
// into the cnv.Error subclass of its kind.
struct NativeError {
  std::string kind, message;
  bool rendered;
};

const char* kindName(cnv::Error::Kind kind) {
  switch (kind) {
    case cnv::Error::Kind::Model:
      return "model";
    case cnv::Error::Kind::Data:
      return "data";
    case cnv::Error::Kind::Usage:
      return "usage";
    case cnv::Error::Kind::Internal:
      return "internal";
  }
  return "internal";
}

template <typename F>
auto guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const cnv::Error& e) {
    throw NativeError{kindName(e.kind()), e.what(), e.rendered()};
  }
}

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A C-contiguous float32 view of `object`: numpy arrays of that kind as they are (no
// copy), anything else (other dtypes, strides, torch tensors) converted once.
FloatArray floatArray(const py::handle& object, const std::string& what) {
  FloatArray array = FloatArray::ensure(object);
  if (!array)
    throw NativeError{"usage", what + " is not an array of numbers (numpy array or torch tensor)",
                      false};
  return array;
}

std::vector<int64_t> shapeOf(const py::array& array) {
  return std::vector<int64_t>(array.shape(), array.shape() + array.ndim());
}

// The inputs as views; `keep` holds the arrays they point into.
std::map<std::string, cnv::TensorView> views(const py::dict& inputs,
                                             std::vector<FloatArray>& keep) {
  std::map<std::string, cnv::TensorView> in;
  keep.reserve(inputs.size());
  for (const auto& [key, value] : inputs) {
    const std::string name = py::cast<std::string>(key);
    keep.push_back(floatArray(value, "input '" + name + "'"));
    in[name] = {keep.back().data(), shapeOf(keep.back())};
  }
  return in;
}

struct PyModel {
  cnv::Model model;
  std::string source, fileName, modelName;

  static PyModel compile(const std::string& source, const std::string& fileName,
                         const std::string& modelName, const std::string& cpu) {
    return guarded([&] {
      cnv::Model model = cnv::Model::fromSource(source, fileName, {modelName, cpu});
      return PyModel{std::move(model), source, fileName, modelName};
    });
  }

  void setParam(const std::string& name, const py::handle& value) {
    FloatArray array = floatArray(value, "param '" + name + "'");
    guarded([&] { model.setParam(name, {array.data(), shapeOf(array)}); });
  }

  // outputs: name → a writable C-contiguous float32 array of the output's shape.
  void run(const py::dict& inputs, const py::dict& outputs, int threads) {
    std::vector<FloatArray> keep;
    const std::map<std::string, cnv::TensorView> in = views(inputs, keep);
    std::map<std::string, cnv::MutableTensorView> out;
    std::vector<py::array> keepOut;
    for (const auto& [key, value] : outputs) {
      const std::string name = py::cast<std::string>(key);
      py::array array = py::reinterpret_borrow<py::array>(value);
      keepOut.push_back(array);
      out[name] = {static_cast<float*>(array.mutable_data()), shapeOf(array)};
    }
    guarded([&] {
      py::gil_scoped_release release;
      model.runInto(in, out, threads);
    });
  }

  std::map<std::string, std::vector<int64_t>> outputShapes(const py::dict& inputs) {
    std::vector<FloatArray> keep;
    const std::map<std::string, cnv::TensorView> in = views(inputs, keep);
    return guarded([&] { return model.outputShapes(in); });
  }

  std::string report() const {
    return guarded([&] {
      return cnv::formatReport(cnv::ModelFactory::graph(model), cnv::ModelFactory::kernels(model));
    });
  }

  std::string irAfter(const std::string& pass) const {
    return guarded([&] {
      const auto& names = cnv::passes::passNames();
      if (std::find(names.begin(), names.end(), pass) == names.end()) {
        std::string known;
        for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
        throw cnv::usageError("unknown pass '" + pass + "' (passes: " + known + ")");
      }
      std::string text;
      cnv::passes::PipelineOptions options;
      options.stopAfter = pass;
      options.log = [&](const std::string& name, const std::string& ir, bool) {
        if (name == pass) text = ir;
      };
      cnv::compileToIr(std::make_unique<cnv::SourceFile>(fileName, source), modelName, options);
      return text;
    });
  }

  std::string port(const std::string& to, const std::string& layout) const {
    return guarded([&] {
      if (to != "pytorch")
        throw cnv::usageError("port: '" + to + "' is not a target; the choice is pytorch");
      if (layout != "declared" && layout != "pytorch")
        throw cnv::usageError("port: layout '" + layout + "' is neither declared nor pytorch");
      cnv::CompiledIr compiled =
          cnv::compileToIr(std::make_unique<cnv::SourceFile>(fileName, source), modelName,
                           cnv::port::portPipeline());
      return cnv::port::portToPytorch(compiled, layout == "pytorch"
                                                    ? cnv::port::LayoutMode::Pytorch
                                                    : cnv::port::LayoutMode::Declared)
          .source;
    });
  }
};

py::list specs(const std::vector<cnv::TensorSpec>& specs) {
  py::list list;
  for (const cnv::TensorSpec& s : specs) list.append(py::make_tuple(s.name, s.dims, s.layout));
  return list;
}

}  // namespace

PYBIND11_MODULE(_cnv, m) {
  m.doc() = "cnv's native module; use the cnv package";
  static py::exception<NativeError> nativeError(m, "NativeError");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const NativeError& e) {
      PyErr_SetObject(nativeError.ptr(), py::make_tuple(e.kind, e.message, e.rendered).ptr());
    }
  });
  m.attr("version") = CNV_VERSION;
  py::class_<PyModel>(m, "Model")
      .def_static("compile", &PyModel::compile)
      .def_property_readonly("name", [](const PyModel& p) { return p.model.name(); })
      .def_property_readonly("inputs", [](const PyModel& p) { return specs(p.model.inputs()); })
      .def_property_readonly("params", [](const PyModel& p) { return specs(p.model.params()); })
      .def_property_readonly("outputs", [](const PyModel& p) { return specs(p.model.outputs()); })
      .def("unbound_params", [](const PyModel& p) { return p.model.unboundParams(); })
      .def("set_param", &PyModel::setParam)
      .def("run", &PyModel::run)
      .def("output_shapes", &PyModel::outputShapes)
      .def("report", &PyModel::report)
      .def("ir_after", &PyModel::irAfter)
      .def("port", &PyModel::port);
  m.def("read_safetensors", [](const std::string& path) {
    return guarded([&] {
      py::dict arrays;
      for (auto& [name, tensor] : cnv::readSafetensors(path)) {
        py::array_t<float> array(tensor.shape());
        std::copy(tensor.data(), tensor.data() + tensor.size(), array.mutable_data());
        arrays[py::str(name)] = array;
      }
      return arrays;
    });
  });
}
