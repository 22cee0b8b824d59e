// The configuration of what goes on the wire: signing, cloudevents, oauth2 auth (docs/outbound.md).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "evrouter/config/loader.h"
#include "support/harness.h"

namespace evr::config {
namespace {

namespace fs = std::filesystem;
using test::TempDir;
using test::write_file;

struct OutboundFiles {
  TempDir dir;
  OutboundFiles() {
    ::setenv("EVR_OUT_SECRET", "shpss_x", 1);
    ::setenv("EVR_OUT_WHSEC", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
    ::setenv("EVR_OUT_NOT_WHSEC", "not base64 !", 1);
    ::setenv("EVR_OUT_CLIENT_SECRET", "cs", 1);
  }
  LoadResult load(const std::string& main, const std::string& flow) {
    write_file(dir / "evrouter.yaml", main + "flows: [" + (dir / "flows").string() + "]\n");
    write_file(dir / "flows" / "f.yaml", flow);
    LoadOptions o;
    return config::load(dir / "evrouter.yaml", o);
  }
};

std::string messages(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.diagnostics) out += d.str() + "\n";
  return out;
}

bool mentions(const LoadResult& r, const std::string& text) {
  return messages(r).find(text) != std::string::npos;
}

const char* kOutboundFlow = R"(name: f
source: {secret: {env: EVR_OUT_SECRET}}
branches:
  - destinations:
      - connection: c
        cloudevents: structured
      - connection: c
        signing: none
        cloudevents: binary
      - connection: c
        signing: {type: standard-webhooks, secrets: [{env: EVR_OUT_WHSEC}, {env: EVR_OUT_WHSEC}]}
)";

TEST(OutboundConfig, SigningCloudEventsAndOAuth2Load) {
  OutboundFiles fx;
  const auto r = fx.load(R"(connections:
  c:
    base_uri: http://127.0.0.1:9000
    signing: {type: standard-webhooks, secret: {env: EVR_OUT_WHSEC}}
    auth:
      type: oauth2
      token_url: http://127.0.0.1:9001/oauth/token
      client_id: me
      client_secret: {env: EVR_OUT_CLIENT_SECRET}
      scope: a b
      audience: https://api
      client_auth: form
)",
                         kOutboundFlow);
  ASSERT_TRUE(r.ok()) << messages(r);
  const auto& c = r.config->connections.at("c");
  EXPECT_EQ(c.signing.type, Signing::Type::standard_webhooks);
  ASSERT_EQ(c.signing.secrets.size(), 1u);
  EXPECT_EQ(c.auth.type, Auth::Type::oauth2);
  EXPECT_EQ(c.auth.token_url, "http://127.0.0.1:9001/oauth/token");
  EXPECT_EQ(c.auth.client_id, "me");
  EXPECT_EQ(c.auth.secret->resolve(), "cs");
  EXPECT_EQ(c.auth.scope, "a b");
  EXPECT_EQ(c.auth.audience, "https://api");
  EXPECT_EQ(c.auth.client_auth, Auth::ClientAuth::form);
  const auto& ds = r.config->flows.at(0).branches.at(0).destinations;
  EXPECT_EQ(ds[0].cloudevents, Destination::CloudEvents::structured);
  EXPECT_FALSE(ds[0].signing.has_value());  // the connection's
  EXPECT_EQ(ds[1].cloudevents, Destination::CloudEvents::binary);
  ASSERT_TRUE(ds[1].signing.has_value());
  EXPECT_EQ(ds[1].signing->type, Signing::Type::none);
  EXPECT_EQ(ds[2].cloudevents, Destination::CloudEvents::none);
  ASSERT_TRUE(ds[2].signing.has_value());
  EXPECT_EQ(ds[2].signing->secrets.size(), 2u);
}

TEST(OutboundConfig, ErrorsArePrecise) {
  OutboundFiles fx;
  const auto r = fx.load(R"(connections:
  c:
    base_uri: http://127.0.0.1:9000
    signing: {type: standard-webhooks, secret: {env: EVR_OUT_NOT_WHSEC}}
    auth: {type: oauth2, token_url: "ftp://x", client_secret: {env: EVR_OUT_UNSET_X}, client_auth: post}
)",
                         R"(name: f
source: {secret: {env: EVR_OUT_SECRET}}
branches:
  - destinations:
      - connection: c
        cloudevents: binaryy
        signing: {type: hmac}
)");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(
      mentions(r,
               "evrouter.yaml:4:48: error: connections.c.signing.secret: env EVR_OUT_NOT_WHSEC is not a "
               "Standard Webhooks secret (whsec_ followed by base64)"))
      << messages(r);
  EXPECT_TRUE(
      mentions(r,
               "evrouter.yaml:5:37: error: connections.c.auth.token_url: expected an http:// or https:// "
               "URI without query"))
      << messages(r);
  EXPECT_TRUE(mentions(r, "error: connections.c.auth.client_id: required key 'client_id' is missing"))
      << messages(r);
  EXPECT_TRUE(
      mentions(r, "connections.c.auth.client_secret: environment variable EVR_OUT_UNSET_X is not set"))
      << messages(r);
  EXPECT_TRUE(mentions(r, "connections.c.auth.client_auth: expected one of basic, form, found 'post'"))
      << messages(r);
  EXPECT_TRUE(
      mentions(r,
               "f.yaml:6:22: error: branches[0].destinations[0].cloudevents: expected one of none, binary, "
               "structured, found 'binaryy' (did you mean 'binary'?)"))
      << messages(r);
  EXPECT_TRUE(
      mentions(r, "branches[0].destinations[0].signing.type: expected one of standard-webhooks, none"))
      << messages(r);
}

TEST(OutboundConfig, SigningNeedsASecret) {
  OutboundFiles fx;
  const auto r = fx.load(R"(connections:
  c:
    base_uri: http://127.0.0.1:9000
    signing: {type: standard-webhooks}
)",
                         kOutboundFlow);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(mentions(r, "connections.c.signing.secret: required key 'secret' is missing")) << messages(r);
}

}  // namespace
}  // namespace evr::config
