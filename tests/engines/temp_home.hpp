#pragma once
// A Datavor home for one test: a fresh temporary folder whose `home`
// subfolder is not created yet (the store must create it), removed with
// everything in it when the test ends.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace datavor::testing {

struct temp_home {
    std::filesystem::path path;
    temp_home() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "datavor-home-test.XXXXXX").string();  // mkdtemp's template
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = std::filesystem::path(tmpl) / "home";
    }
    ~temp_home() {
        std::error_code ec;
        std::filesystem::remove_all(path.parent_path(), ec);
    }
    temp_home(const temp_home&) = delete;
    temp_home& operator=(const temp_home&) = delete;
};

}  // namespace datavor::testing
