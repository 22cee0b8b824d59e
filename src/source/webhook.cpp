// The generic webhook source: a configurable verifier, and the event type and id read from headers or
// the body as the flow says. Also the factory that compiles any flow's source.
#include "evrouter/common/log.h"
#include "evrouter/source/shopify.h"
#include "evrouter/source/verifiers.h"
#include "source/envelope.h"

namespace evr::source {
namespace {

struct WebhookOptions {
  std::string name;
  std::string event_type;
  std::string type_header;
  std::string type_field;
  bool type_field_optional = false;  // Standard Webhooks default: the body's "type" when it has one
  std::string id_header;
  std::vector<std::string> keep_headers;
};

class WebhookSource final : public Source {
 public:
  WebhookSource(std::unique_ptr<Verifier> verifier, WebhookOptions options)
      : verifier_(std::move(verifier)), options_(std::move(options)) {}

  std::optional<Refusal> verify(const Request& request) const override { return verifier_->verify(request); }

  std::optional<Refusal> describe(event::Event& e, const Request& request,
                                  const nlohmann::json& body) const override {
    e.source = options_.name;
    if (!options_.type_header.empty()) {
      e.type = std::string(request.header(options_.type_header));
      if (e.type.empty())
        return Refusal{400, "missing_type", options_.type_header + " header is required", {}};
    } else if (!options_.type_field.empty()) {
      auto it = body.find(options_.type_field);
      if (it != body.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        e.type = it->get<std::string>();
      } else if (options_.type_field_optional) {
        e.type = "webhook";
      } else {
        return Refusal{
            400, "missing_type", "the body's \"" + options_.type_field + "\" field must be a string", {}};
      }
    } else {
      e.type = options_.event_type;
    }
    if (e.type.size() > kMaxTypeLength)
      return Refusal{400, "invalid_type", "the event type is over 256 characters", {}};
    if (!options_.id_header.empty()) {
      const std::string_view id = request.header(options_.id_header);
      if (id.size() > kMaxIdLength) {
        return Refusal{400, "invalid_id", options_.id_header + " is over 128 characters", {}};
      }
      e.webhook_id = std::string(id);
      e.dedup_key = e.webhook_id;
    }
    take_correlation_id(e, request.header);
    auto keep = [&](const std::string& name) {
      if (name.empty()) return;
      for (const auto& [k, v] : e.headers) {
        if (k == name) return;
      }
      const std::string_view v = request.header(name);
      if (!v.empty()) e.headers.emplace_back(name, std::string(v));
    };
    keep(options_.type_header);
    keep(options_.id_header);
    for (const auto& h : options_.keep_headers) keep(h);
    return std::nullopt;
  }

  std::vector<std::string> body_fields() const override {
    if (options_.type_header.empty() && !options_.type_field.empty()) return {options_.type_field};
    return {};
  }

 private:
  std::unique_ptr<Verifier> verifier_;
  WebhookOptions options_;
};

using Severity = config::Diagnostic::Severity;

std::vector<std::string> resolve(const std::vector<config::SecretRef>& refs, const char* path,
                                 std::vector<config::Diagnostic>& problems) {
  std::vector<std::string> out;
  for (const auto& ref : refs) {
    if (auto v = ref.resolve()) {
      out.push_back(std::move(*v));
    } else {
      problems.push_back({Severity::error, ref.where, path, ref.describe() + " is not set"});
    }
  }
  return out;
}

std::unique_ptr<Verifier> make_verifier(const config::Verify& v, std::vector<config::Diagnostic>& problems) {
  using Type = config::Verify::Type;
  switch (v.type) {
    case Type::hmac: {
      HmacOptions o;
      o.header = v.header;
      o.digest =
          v.algorithm == config::Verify::Algorithm::sha1 ? crypto::Digest::sha1 : crypto::Digest::sha256;
      o.encoding = v.encoding == config::Verify::Encoding::hex ? HmacOptions::Encoding::hex
                                                               : HmacOptions::Encoding::base64;
      o.prefix = v.prefix;
      return make_hmac_verifier(std::move(o), resolve(v.secrets, "source.verify.secret", problems));
    }
    case Type::standard_webhooks: {
      std::vector<std::string> keys;
      for (const auto& ref : v.secrets) {
        auto value = ref.resolve();
        if (!value) {
          problems.push_back(
              {Severity::error, ref.where, "source.verify.secret", ref.describe() + " is not set"});
        } else if (auto key = standard_webhooks_key(*value)) {
          keys.push_back(std::move(*key));
        } else {
          problems.push_back(
              {Severity::error, ref.where, "source.verify.secret",
               ref.describe() + " is not a Standard Webhooks secret (whsec_ followed by base64)"});
        }
      }
      return make_standard_webhooks_verifier(std::move(keys), v.tolerance);
    }
    case Type::basic: {
      auto secrets = resolve(v.secrets, "source.verify.password", problems);
      return make_basic_verifier(v.username, secrets.empty() ? std::string() : std::move(secrets.front()));
    }
    case Type::bearer: {
      auto secrets = resolve(v.secrets, "source.verify.token", problems);
      return make_bearer_verifier(secrets.empty() ? std::string() : std::move(secrets.front()));
    }
    case Type::none:
      return make_no_verifier();
  }
  return make_no_verifier();
}

}  // namespace

std::shared_ptr<const Source> make_source(const config::Source& s) {
  std::vector<config::Diagnostic> problems;
  std::shared_ptr<const Source> out;
  if (s.type == "shopify") {
    out = make_shopify_source(resolve(s.secrets, "source.secret", problems));
  } else if (s.type == "webhook") {
    WebhookOptions o;
    o.name = s.name;
    o.event_type = s.event_type;
    o.type_header = s.type_header;
    o.type_field = s.type_field;
    o.id_header = s.id_header;
    o.keep_headers = s.keep_headers;
    const bool standard = s.verify.type == config::Verify::Type::standard_webhooks;
    if (o.event_type.empty() && o.type_header.empty() && o.type_field.empty()) {
      if (standard) {
        o.type_field = "type";
        o.type_field_optional = true;
      } else {
        o.event_type = "webhook";
      }
    }
    if (o.id_header.empty() && standard) o.id_header = "webhook-id";
    out = std::make_shared<WebhookSource>(make_verifier(s.verify, problems), std::move(o));
  } else {
    problems.push_back(
        {Severity::error, s.where, "source.type", "source type " + s.type + " has no listener"});
  }
  if (!problems.empty()) throw config::ConfigError(std::move(problems));
  return out;
}

}  // namespace evr::source
