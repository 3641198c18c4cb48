// cnv_reference_run: the reference interpreter (tests/reference) behind `cnvc run`'s
// command line, so the PyTorch interop tests can check the reference as well as the JIT.
//
//   cnv_reference_run MODEL.cnv [--model NAME] --input NAME=F.npy ... --param NAME=F.npy ...
//                     --output NAME=F.npy ...
//
// Arrays are in the declared layouts, as for `cnvc run`. The model is parsed with
// cnv::parse only: no meaning is checked beyond what the reference itself needs, so it is
// meant for valid models. Exit status: 0 success, 1 any error (with a message), 2 misuse.
#include <cstdint>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "cnv/Error.h"
#include "cnv/Io.h"
#include "compiler/Compiler.h"
#include "compiler/frontend/Parser.h"
#include "tests/reference/Reference.h"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string file, model;
  std::map<std::string, std::string> inputs, params, outputs;
};

void addPair(std::map<std::string, std::string>& pairs, const std::string& option,
             const std::string& item) {
  size_t eq = item.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
    throw UsageError(option + " expects NAME=FILE, got '" + item + "'");
  if (!pairs.emplace(item.substr(0, eq), item.substr(eq + 1)).second)
    throw UsageError(option + " names '" + item.substr(0, eq) + "' twice");
}

Options parseArgs(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool hasValue = false;
    std::string flag = arg;
    if (arg.rfind("--", 0) == 0) {
      size_t eq = arg.find('=');
      // `--input=x=F.npy` as well as `--input x=F.npy`.
      if (eq != std::string::npos) {
        flag = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        hasValue = true;
      }
      if (flag != "--model" && flag != "--input" && flag != "--param" && flag != "--output")
        throw UsageError("unknown option '" + flag + "'");
      if (!hasValue) {
        if (i + 1 >= argc) throw UsageError(flag + " needs a value");
        value = argv[++i];
      }
      if (flag == "--model") {
        if (!options.model.empty()) throw UsageError("--model given twice");
        options.model = value;
      } else {
        addPair(flag == "--input"   ? options.inputs
                : flag == "--param" ? options.params
                                    : options.outputs,
                flag, value);
      }
    } else {
      if (!options.file.empty()) throw UsageError("more than one model file: '" + arg + "'");
      options.file = arg;
    }
  }
  if (options.file.empty()) throw UsageError("no MODEL.cnv given");
  return options;
}

const cnv::ast::Model& pickModel(const cnv::ast::Module& module, const Options& options) {
  if (options.model.empty()) {
    if (module.models.size() != 1)
      throw UsageError(options.file + " holds " + std::to_string(module.models.size()) +
                       " models; pick one with --model NAME");
    return module.models.front();
  }
  for (const cnv::ast::Model& model : module.models)
    if (model.name.text == options.model) return model;
  throw UsageError(options.file + " holds no model named '" + options.model + "'");
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Checks each array against its declaration (rank, integer dims, consistent symbols), so
// the reference never indexes past an array that does not fit.
void checkShapes(const cnv::ast::Model& model, const std::map<std::string, cnv::Tensor>& inputs,
                 const std::map<std::string, cnv::Tensor>& params) {
  std::map<std::string, int64_t> bindings;
  for (const cnv::ast::Statement& s : model.statements) {
    const auto* decl = std::get_if<cnv::ast::TensorDecl>(&s);
    if (!decl) continue;
    bool input = decl->kind == cnv::ast::TensorDecl::Kind::Input;
    const auto& arrays = input ? inputs : params;
    auto it = arrays.find(decl->name.text);
    if (it == arrays.end()) continue;  // reported as a missing name elsewhere
    const std::vector<int64_t>& shape = it->second.shape();
    std::string what = std::string(input ? "input '" : "param '") + decl->name.text + "'";
    if (shape.size() != decl->dims.size())
      throw std::runtime_error(what + ": shape " + shapeText(shape) + " has rank " +
                               std::to_string(shape.size()) + ", expected " +
                               std::to_string(decl->dims.size()));
    for (size_t i = 0; i < shape.size(); ++i) {
      const cnv::ast::Dim& dim = decl->dims[i];
      int64_t expected =
          dim.isSymbol() ? bindings.emplace(dim.symbol, shape[i]).first->second : dim.value;
      if (shape[i] != expected)
        throw std::runtime_error(what + ": shape " + shapeText(shape) + " does not match dim " +
                                 std::to_string(i) + " (" +
                                 (dim.isSymbol() ? dim.symbol + " = " : std::string()) +
                                 std::to_string(expected) + ")");
    }
  }
}

void requireNames(const std::map<std::string, std::string>& given,
                  const std::set<std::string>& declared, const std::string& option) {
  for (const auto& [name, file] : given)
    if (!declared.count(name))
      throw UsageError(option + " names '" + name + "', which the model does not declare");
  for (const std::string& name : declared)
    if (!given.count(name)) throw UsageError("missing " + option + " " + name + "=FILE");
}

int run(const Options& options) {
  std::unique_ptr<cnv::SourceFile> source = cnv::readSourceFile(options.file);
  cnv::DiagnosticEngine diagnostics(*source);
  cnv::ast::Module module = cnv::parse(*source, diagnostics);
  diagnostics.throwIfErrors();
  const cnv::ast::Model& model = pickModel(module, options);

  std::set<std::string> inputNames, paramNames, outputNames;
  for (const cnv::ast::Statement& s : model.statements) {
    if (const auto* decl = std::get_if<cnv::ast::TensorDecl>(&s))
      (decl->kind == cnv::ast::TensorDecl::Kind::Input ? inputNames : paramNames)
          .insert(decl->name.text);
    else if (const auto* out = std::get_if<cnv::ast::OutputStmt>(&s))
      outputNames.insert(out->name.text);
  }
  requireNames(options.inputs, inputNames, "--input");
  requireNames(options.params, paramNames, "--param");
  requireNames(options.outputs, outputNames, "--output");

  std::map<std::string, cnv::Tensor> inputs, params;
  for (const auto& [name, file] : options.inputs) inputs[name] = cnv::readNpy(file);
  for (const auto& [name, file] : options.params) params[name] = cnv::readNpy(file);
  checkShapes(model, inputs, params);

  std::map<std::string, cnv::TensorView> inputViews, paramViews;
  for (const auto& [name, tensor] : inputs) inputViews[name] = tensor.view();
  for (const auto& [name, tensor] : params) paramViews[name] = tensor.view();
  std::map<std::string, cnv::Tensor> results =
      cnv::reference::runModel(model, inputViews, paramViews);
  for (const auto& [name, file] : options.outputs) {
    auto it = results.find(name);
    if (it == results.end())
      throw std::runtime_error("the reference produced no output '" + name + "'");
    cnv::writeNpy(file, it->second);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parseArgs(argc, argv);
    return run(options);
  } catch (const UsageError& e) {
    std::cerr << "cnv_reference_run: error: " << e.what() << "\n"
              << "usage: cnv_reference_run MODEL.cnv [--model NAME] --input NAME=F.npy ... "
                 "--param NAME=F.npy ... --output NAME=F.npy ...\n";
    return 2;
  } catch (const cnv::Error& e) {
    std::string message = e.what();
    if (!message.empty() && message.back() != '\n') message += '\n';
    if (e.kind() == cnv::Error::Kind::Model)
      std::cerr << message;  // already rendered diagnostics
    else
      std::cerr << "cnv_reference_run: error: " << message;
    return e.kind() == cnv::Error::Kind::Usage ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "cnv_reference_run: error: " << e.what() << "\n";
    return 1;
  } catch (...) {
    std::cerr << "cnv_reference_run: error: unknown exception\n";
    return 1;
  }
}
