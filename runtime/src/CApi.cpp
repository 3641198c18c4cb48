// The compile side of the C API (cnv/cnv_c.h): libcnv only.
#include "CModel.h"
#include "ModelFactory.h"
#include "cnv/cnv_c.h"

namespace {

cnv::CompileOptions optionsOf(const cnv_options* options) {
  if (!options) return {};
  return {options->model ? options->model : "", options->cpu ? options->cpu : ""};
}

cnv_model* handleOf(cnv::Model model) {
  auto shared = std::make_shared<cnv::Model>(std::move(model));
  return new cnv_model(shared, cnv::ModelFactory::runner(*shared));
}

}  // namespace

extern "C" {

cnv_status cnv_model_from_file(const char* path, const cnv_options* options, cnv_model** model) {
  return cnv::c::guarded([&] {
    if (!model) throw cnv::usageError("model is NULL");
    *model = nullptr;
    if (!path) throw cnv::usageError("path is NULL");
    *model = handleOf(cnv::Model::fromFile(path, optionsOf(options)));
  });
}

cnv_status cnv_model_from_source(const char* source, const char* file_name,
                                 const cnv_options* options, cnv_model** model) {
  return cnv::c::guarded([&] {
    if (!model) throw cnv::usageError("model is NULL");
    *model = nullptr;
    if (!source) throw cnv::usageError("source is NULL");
    *model = handleOf(
        cnv::Model::fromSource(source, file_name ? file_name : "<source>", optionsOf(options)));
  });
}

}  // extern "C"
