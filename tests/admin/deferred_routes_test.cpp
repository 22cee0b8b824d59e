// Which admin routes answer on the admin loop and which on its worker thread (Response::deferred): the
// store searches whose cost grows with the data (event and dead-letter lists with filters) run on the
// worker, so /healthz, /readyz and /metrics keep answering at once; bad parameters are still refused on the
// loop, before any work is queued.
#include <gtest/gtest.h>

#include "daemon/admin_api.h"
#include "e2e/pipeline_fixture.h"

using namespace evr;
using namespace evr::test;

namespace {

admin::Request get(std::string path, std::map<std::string, std::string> query = {}) {
  admin::Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

}  // namespace

TEST_F(PipelineTest, StoreSearchesRunOnTheAdminWorkerAndProbesOnTheLoop) {
  start(make_config());
  const admin::Router router = daemon::make_admin_router(*daemon_);
  for (const char* path : {"/healthz", "/readyz", "/metrics", "/v1/stats"}) {
    auto req = get(path);
    const auto resp = router.route(req);
    EXPECT_FALSE(resp.deferred) << path;
    EXPECT_EQ(resp.status, 200U) << path;
  }
  for (auto req : {get("/v1/events", {{"type", "orders/none"}, {"status", "dead"}}),
                   get("/v1/dlq", {{"flow", "nope"}})}) {
    const auto resp = router.route(req);
    ASSERT_TRUE(resp.deferred) << req.path;
    const auto answer = resp.deferred();
    EXPECT_EQ(answer.status, 200U) << req.path << ": " << answer.body;
  }
  // Refused on the loop: nothing is queued for a request that cannot run.
  auto bad = get("/v1/events", {{"status", "lost"}});
  const auto refused = router.route(bad);
  EXPECT_FALSE(refused.deferred);
  EXPECT_EQ(refused.status, 400U);
  // A malformed cursor is found by the store, on the worker: still a 400, not a 500.
  auto cursor = get("/v1/events", {{"cursor", "not-a-cursor"}});
  const auto later = router.route(cursor);
  ASSERT_TRUE(later.deferred);
  EXPECT_EQ(later.deferred().status, 400U);
}
