// The schema registry over a real SQLite store: inference off the caller's thread, sampling, the bounded
// queue, the schema cap, and persistence across reopening.
#include "evrouter/schema/registry.h"

#include <gtest/gtest.h>

#include "evrouter/store/sqlite_store.h"
#include "support/harness.h"

using namespace evr;
using namespace std::chrono_literals;

namespace {

event::EventPtr make_event(const std::string& source, const std::string& type, const std::string& payload,
                           int64_t at_ms = 1700000000000) {
  auto e = std::make_shared<event::Event>();
  e->source = source;
  e->type = type;
  e->payload = payload;
  e->time_ms = at_ms;
  return e;
}

struct Fixture {
  test::TempDir dir;
  config::Store store_config;
  std::unique_ptr<store::Store> store;
  Fixture() {
    store_config.state_dir = (dir.path() / "state").string();
    store = store::make_sqlite_store(store_config);
    store->open();
  }
  void reopen() {
    store->close();
    store = store::make_sqlite_store(store_config);
    store->open();
  }
};

}  // namespace

TEST(SchemaRegistry, InfersPersistsAndLoadsBack) {
  Fixture f;
  config::Schemas cfg;
  {
    schema::Registry r(cfg, *f.store);
    r.start();
    r.offer(make_event("shopify", "orders/create", R"({"id": 1, "email": "a@b.c"})"));
    r.offer(make_event("shopify", "orders/create", R"({"id": 2})"));
    r.offer(make_event("billing", "invoice.paid", R"({"amount": 3.5})"));
    r.offer(make_event("billing", "invoice.paid", "not json"));
    r.sync();
    const auto list = r.list();
    ASSERT_EQ(list.size(), 2U);
    EXPECT_EQ(list[0].source, "billing");
    EXPECT_EQ(list[1].type, "orders/create");
    EXPECT_EQ(list[1].events, 2);
    EXPECT_EQ(list[1].fields, 2U);
    EXPECT_EQ(r.stats().observed, 3);
    EXPECT_EQ(r.stats().unparsable, 1);
    r.stop();
  }
  f.reopen();
  schema::Registry again(cfg, *f.store);
  again.start();
  auto s = again.get("shopify", "orders/create");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->events, 2);
  const auto fs = schema::fields(*s);
  ASSERT_EQ(fs.size(), 2U);
  EXPECT_EQ(fs[0].path, "email");
  EXPECT_FALSE(fs[0].required);
  EXPECT_EQ(fs[0].sample, "\"[redacted]\"");
  // Counting goes on from what was kept.
  again.offer(make_event("shopify", "orders/create", R"({"id": 3, "email": "x@y.z"})"));
  again.sync();
  EXPECT_EQ(again.get("shopify", "orders/create")->events, 3);
  again.stop();
}

TEST(SchemaRegistry, SampleRateZeroExaminesNothing) {
  Fixture f;
  config::Schemas cfg;
  cfg.sample_rate = 0;
  schema::Registry r(cfg, *f.store);
  r.start();
  for (int i = 0; i < 10; ++i) r.offer(make_event("s", "t", "{}"));
  r.sync();
  EXPECT_TRUE(r.list().empty());
  EXPECT_EQ(r.stats().sampled_out, 10);
}

TEST(SchemaRegistry, FullQueueDropsInsteadOfWaiting) {
  Fixture f;
  config::Schemas cfg;
  cfg.queue = 5;
  schema::Registry r(cfg, *f.store);  // not started: nothing drains the queue
  for (int i = 0; i < 8; ++i) r.offer(make_event("s", "t", "{}"));
  EXPECT_EQ(r.stats().queued, 5U);
  EXPECT_EQ(r.stats().dropped, 3);
}

TEST(SchemaRegistry, SchemaCap) {
  Fixture f;
  config::Schemas cfg;
  cfg.max_schemas = 2;
  schema::Registry r(cfg, *f.store);
  r.start();
  for (const char* t : {"a", "b", "c", "a"}) r.offer(make_event("s", t, "{}"));
  r.sync();
  EXPECT_EQ(r.list().size(), 2U);
  EXPECT_EQ(r.stats().over_limit, 1);
  EXPECT_EQ(r.get("s", "a")->events, 2);
}

TEST(SchemaRegistry, MaxRateExaminesAFewEventsPerSecondPerType) {
  Fixture f;
  config::Schemas cfg;
  cfg.max_rate = 3;
  schema::Registry r(cfg, *f.store);
  r.start();
  // Ten of one type in the same second: three examined. Another type has its own budget; the next
  // second starts over.
  for (int i = 0; i < 10; ++i) r.offer(make_event("s", "busy", "{}", 1700000000100 + i));
  for (int i = 0; i < 2; ++i) r.offer(make_event("s", "rare", "{}", 1700000000500));
  for (int i = 0; i < 5; ++i) r.offer(make_event("s", "busy", "{}", 1700000001200));
  r.sync();
  EXPECT_EQ(r.get("s", "busy")->events, 6);
  EXPECT_EQ(r.get("s", "rare")->events, 2);
  EXPECT_EQ(r.stats().observed, 8);
  EXPECT_EQ(r.stats().sampled_out, 9);
}

TEST(SchemaRegistry, MaxRateZeroExaminesEveryEvent) {
  Fixture f;
  config::Schemas cfg;
  cfg.max_rate = 0;
  schema::Registry r(cfg, *f.store);
  r.start();
  for (int i = 0; i < 50; ++i) r.offer(make_event("s", "t", "{}"));
  r.sync();
  EXPECT_EQ(r.get("s", "t")->events, 50);
  EXPECT_EQ(r.stats().sampled_out, 0);
}
