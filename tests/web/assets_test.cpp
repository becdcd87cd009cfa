#include "web/assets.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <string_view>

namespace dmarcd::web {
namespace {

TEST(AssetsTest, RootServesTheDashboardPage) {
  const Asset* root = FindAsset("/");
  const Asset* index = FindAsset("/index.html");

  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root, index);
  EXPECT_EQ(root->path, "/index.html");
  EXPECT_EQ(root->content_type, "text/html; charset=utf-8");
  EXPECT_TRUE(root->body.starts_with("<!doctype html>"));
  EXPECT_NE(root->body.find("vendor/chart.umd.js"), std::string_view::npos);
}

TEST(AssetsTest, ServesScriptsAndStylesWithTheirTypes) {
  const Asset* app = FindAsset("/app.js");
  const Asset* style = FindAsset("/style.css");

  ASSERT_NE(app, nullptr);
  ASSERT_NE(style, nullptr);
  EXPECT_EQ(app->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(style->content_type, "text/css; charset=utf-8");
  EXPECT_NE(app->body.find("textContent"), std::string_view::npos);
}

TEST(AssetsTest, DashboardScriptNeverParsesMarkup) {
  const Asset* app = FindAsset("/app.js");

  ASSERT_NE(app, nullptr);
  // Report data reaches the page as text only; any of these would let a
  // reporter's org_name or report_id become markup.
  for (std::string_view sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                                "eval(", "new Function"}) {
    EXPECT_EQ(app->body.find(sink), std::string_view::npos) << sink;
  }
}

TEST(AssetsTest, PageHasNoInlineScriptForTheContentSecurityPolicyToBlock) {
  const Asset* index = FindAsset("/index.html");

  ASSERT_NE(index, nullptr);
  // script-src 'self' blocks inline scripts and on* handler attributes, so
  // every <script> names a file and no element carries a handler.
  size_t at = 0;
  int scripts = 0;
  while ((at = index->body.find("<script", at)) != std::string_view::npos) {
    const size_t end = index->body.find('>', at);
    ASSERT_NE(end, std::string_view::npos);
    EXPECT_NE(index->body.substr(at, end - at).find(" src=\""), std::string_view::npos)
        << index->body.substr(at, end - at);
    at = end;
    ++scripts;
  }
  EXPECT_EQ(scripts, 2);
  EXPECT_EQ(index->body.find(" onclick="), std::string_view::npos);
  EXPECT_EQ(index->body.find(" onload="), std::string_view::npos);
  EXPECT_EQ(index->body.find(" onchange="), std::string_view::npos);
  EXPECT_EQ(index->body.find("javascript:"), std::string_view::npos);
}

TEST(AssetsTest, EmbedsThePinnedChartJsBuildWhole) {
  const Asset* chart = FindAsset("/vendor/chart.umd.js");

  ASSERT_NE(chart, nullptr);
  EXPECT_EQ(chart->content_type, "text/javascript; charset=utf-8");
  // The UMD build opens with its licence banner naming the version.
  EXPECT_TRUE(chart->body.starts_with("/*!\n * Chart.js v4.5.1")) << chart->body.substr(0, 40);
  EXPECT_GT(chart->body.size(), 150000u);
  EXPECT_EQ(chart->body.find('\0'), std::string_view::npos);
}

TEST(AssetsTest, UnknownPathsMatchNothing) {
  EXPECT_EQ(FindAsset(""), nullptr);
  EXPECT_EQ(FindAsset("/missing.js"), nullptr);
  EXPECT_EQ(FindAsset("/../web/src/app.js"), nullptr);
  EXPECT_EQ(FindAsset("/vendor/"), nullptr);
  EXPECT_EQ(FindAsset("index.html"), nullptr);
}

}  // namespace
}  // namespace dmarcd::web
