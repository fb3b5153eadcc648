// The stored document of a FunctionRecord. This is Lambent's own format (not
// the wire shape); fields are added with defaults so old documents still load.
#include <nlohmann/json.hpp>

#include "registry/store.hpp"

namespace lambent::registry {

using nlohmann::json;

namespace {

json config_doc(const FunctionConfig& c) {
  json j = {{"name", c.name},
            {"version", c.version},
            {"runtime", c.runtime},
            {"handler", c.handler},
            {"role", c.role},
            {"description", c.description},
            {"timeout", c.timeout_s},
            {"memory", c.memory_mb},
            {"ephemeral", c.ephemeral_mb},
            {"environment", c.environment},
            {"architecture", c.architecture},
            {"tracing", c.tracing_mode},
            {"log_format", c.log_format},
            {"app_log_level", c.application_log_level},
            {"sys_log_level", c.system_log_level},
            {"log_group", c.log_group},
            {"layers", c.layers},
            {"code_sha256_hex", c.code_sha256_hex},
            {"code_sha256", c.code_sha256},
            {"code_size", c.code_size},
            {"revision_id", c.revision_id},
            {"last_modified_ms", c.last_modified_ms},
            {"version_description", c.description_of_version}};
  if (c.network_egress) j["egress"] = *c.network_egress;
  return j;
}

FunctionConfig config_from(const json& j) {
  FunctionConfig c;
  c.name = j.value("name", "");
  c.version = j.value("version", std::string(kLatest));
  c.runtime = j.value("runtime", "");
  c.handler = j.value("handler", "");
  c.role = j.value("role", "");
  c.description = j.value("description", "");
  c.timeout_s = j.value("timeout", 3);
  c.memory_mb = j.value("memory", 128);
  c.ephemeral_mb = j.value("ephemeral", 512);
  c.environment = j.value("environment", std::map<std::string, std::string>{});
  c.architecture = j.value("architecture", "x86_64");
  c.tracing_mode = j.value("tracing", "PassThrough");
  c.log_format = j.value("log_format", "Text");
  c.application_log_level = j.value("app_log_level", "");
  c.system_log_level = j.value("sys_log_level", "");
  c.log_group = j.value("log_group", "");
  c.layers = j.value("layers", std::vector<std::string>{});
  c.code_sha256_hex = j.value("code_sha256_hex", "");
  c.code_sha256 = j.value("code_sha256", "");
  c.code_size = j.value("code_size", std::uint64_t{0});
  c.revision_id = j.value("revision_id", "");
  c.last_modified_ms = j.value("last_modified_ms", std::int64_t{0});
  c.description_of_version = j.value("version_description", "");
  if (j.contains("egress")) c.network_egress = j["egress"].get<bool>();
  return c;
}

}  // namespace

std::string to_document(const FunctionRecord& rec) {
  json j;
  j["format"] = 1;
  j["latest"] = config_doc(rec.latest);
  j["versions"] = json::array();
  for (const auto& v : rec.versions) j["versions"].push_back(config_doc(v));
  j["aliases"] = json::array();
  for (const auto& a : rec.aliases) {
    json aj = {{"name", a.name},
               {"function_version", a.function_version},
               {"description", a.description},
               {"revision_id", a.revision_id}};
    if (a.routing) aj["routing"] = {{"version", a.routing->version}, {"weight", a.routing->weight}};
    j["aliases"].push_back(aj);
  }
  j["tags"] = rec.tags;
  if (rec.reserved_concurrency) j["reserved_concurrency"] = *rec.reserved_concurrency;
  j["provisioned"] = json::array();
  for (const auto& p : rec.provisioned)
    j["provisioned"].push_back({{"qualifier", p.qualifier},
                                {"requested", p.requested},
                                {"last_modified_ms", p.last_modified_ms}});
  j["next_version"] = rec.next_version;
  return j.dump();
}

Result<FunctionRecord> from_document(std::string_view doc) {
  try {
    const json j = json::parse(doc);
    FunctionRecord rec;
    rec.latest = config_from(j.at("latest"));
    for (const auto& v : j.value("versions", json::array())) rec.versions.push_back(config_from(v));
    for (const auto& a : j.value("aliases", json::array())) {
      Alias al{a.value("name", ""), a.value("function_version", ""), a.value("description", ""),
               std::nullopt, a.value("revision_id", "")};
      if (a.contains("routing"))
        al.routing =
            AliasRouting{a["routing"].value("version", ""), a["routing"].value("weight", 0.0)};
      rec.aliases.push_back(std::move(al));
    }
    rec.tags = j.value("tags", std::map<std::string, std::string>{});
    if (j.contains("reserved_concurrency"))
      rec.reserved_concurrency = j["reserved_concurrency"].get<int>();
    for (const auto& p : j.value("provisioned", json::array()))
      rec.provisioned.push_back({p.value("qualifier", ""), p.value("requested", 0),
                                 p.value("last_modified_ms", std::int64_t{0})});
    rec.next_version = j.value("next_version", 1);
    return rec;
  } catch (const std::exception& e) {
    return fail(Errc::kInternal, std::string("corrupt function document: ") + e.what());
  }
}

}  // namespace lambent::registry
