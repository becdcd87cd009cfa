#include "web/assets.hpp"

#include <gtest/gtest.h>

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
