// Outbound signing and CloudEvents framing, on their own (the e2e tests check them on the wire).
#include "evrouter/destination/signing.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "evrouter/destination/cloudevents.h"

namespace evr::destination {
namespace {

// The example of the Standard Webhooks reference libraries: the signer produces their signature.
TEST(Signer, ReproducesTheStandardWebhooksReferenceVector) {
  ::setenv("EVR_UNIT_WHSEC", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1);
  config::Signing signing;
  signing.type = config::Signing::Type::standard_webhooks;
  signing.secrets = {{config::SecretRef::Kind::env, "EVR_UNIT_WHSEC", {}}};
  auto signer = Signer::make(signing, "test");
  ASSERT_TRUE(signer);
  EXPECT_EQ(signer->signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // Two secrets: two entries, space-separated, in the order configured.
  signing.secrets.push_back(signing.secrets[0]);
  EXPECT_EQ(
      Signer::make(signing, "test")
          ->signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(Signer, NoneUnsetAndMalformedSecrets) {
  EXPECT_EQ(Signer::make(config::Signing{}, "x"), nullptr);
  config::Signing signing;
  signing.type = config::Signing::Type::standard_webhooks;
  ::unsetenv("EVR_UNIT_UNSET");
  signing.secrets = {{config::SecretRef::Kind::env, "EVR_UNIT_UNSET", {}}};
  try {
    (void)Signer::make(signing, "connection c");
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "connection c: signing secret env EVR_UNIT_UNSET is not set");
  }
  ::setenv("EVR_UNIT_BAD", "whsec_!!!", 1);
  signing.secrets = {{config::SecretRef::Kind::env, "EVR_UNIT_BAD", {}}};
  EXPECT_THROW((void)Signer::make(signing, "c"), std::runtime_error);
}

TEST(CloudEvents, HeaderValuesArePercentEncodedWhereTheBindingSays) {
  EXPECT_EQ(cloudevents_header_value("orders/create"), "orders/create");
  EXPECT_EQ(cloudevents_header_value("a b\"c%d\xC3\xA9"), "a%20b%22c%25d%C3%A9");
}

TEST(CloudEvents, StructuredKeepsNonJsonBodiesAsAString) {
  event::Event e;
  e.id = "01ABC";
  e.source = "crm";
  e.type = "contact.updated";
  e.time_ms = 1764000000000;
  e.resources = {"contact/42"};
  http::Request req;
  req.headers = {{"Content-Type", "text/plain"}};
  req.body = "hello";
  apply_cloudevents(config::Destination::CloudEvents::structured, e, "text/plain", req);
  EXPECT_EQ(req.headers[0].second, "application/cloudevents+json");
  const auto j = nlohmann::json::parse(req.body);
  EXPECT_EQ(j["data"], "hello");
  EXPECT_EQ(j["subject"], "contact/42");
  EXPECT_EQ(j["time"], event::format_time(e.time_ms));
  EXPECT_EQ(j["datacontenttype"], "text/plain");

  http::Request bin;
  bin.body = "hello";
  e.occurred_ms = 1763000000000;
  apply_cloudevents(config::Destination::CloudEvents::binary, e, "text/plain", bin);
  EXPECT_EQ(bin.body, "hello");
  http::Headers want = {{"ce-specversion", "1.0"},
                        {"ce-id", "01ABC"},
                        {"ce-source", "crm"},
                        {"ce-type", "contact.updated"},
                        {"ce-time", event::format_time(e.occurred_ms)},
                        {"ce-subject", "contact/42"}};
  EXPECT_EQ(bin.headers, want);
}

}  // namespace
}  // namespace evr::destination
