// Schema drift between two definitions of one table (engines/suggest/drift.hpp):
// what diff() reports for each kind of change, and how columns_of_json() reads
// context.db's schema history. Pure: no store, no server.
#include "engines/suggest/drift.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace datavor::engines::suggest;

namespace {

column_info key_col(std::string name, std::string type) { return {std::move(name), std::move(type), false, true}; }
column_info col(std::string name, std::string type, bool nullable = true) {
    return {std::move(name), std::move(type), nullable, false};
}

// orders(id integer key, note text, amount numeric): the "before" most tests start from.
std::vector<column_info> orders() { return {key_col("id", "integer"), col("note", "text"), col("amount", "numeric")}; }

}  // namespace

TEST_CASE("drift: identical definitions give no drift", "[suggest]") {
    CHECK(diff(orders(), orders()).empty());
    CHECK(diff({}, {}).empty());
}

TEST_CASE("drift: a column only in the new definition is a new column with its type and nullability", "[suggest]") {
    auto after = orders();
    after.push_back(col("coupon", "character varying(20)", false));
    const auto d = diff(orders(), after);
    REQUIRE(d.size() == 1);
    CHECK(d[0].kind == drift_kind::new_column);
    CHECK(std::string(name_of(d[0].kind)) == "new_column");
    CHECK(d[0].column == "coupon");
    CHECK(d[0].new_type == "character varying(20)");
    CHECK(d[0].old_type.empty());
    CHECK_FALSE(d[0].nullable);
}

TEST_CASE("drift: a column missing from the new definition is a dropped column with its old type", "[suggest]") {
    const std::vector<column_info> after{key_col("id", "integer"), col("amount", "numeric")};
    const auto d = diff(orders(), after);
    REQUIRE(d.size() == 1);
    CHECK(d[0].kind == drift_kind::dropped_column);
    CHECK(std::string(name_of(d[0].kind)) == "dropped_column");
    CHECK(d[0].column == "note");
    CHECK(d[0].old_type == "text");
    CHECK(d[0].new_type.empty());
}

TEST_CASE("drift: a column whose type differs is a type change from the old type to the new", "[suggest]") {
    auto after = orders();
    after[2].type = "numeric(12,2)";
    const auto d = diff(orders(), after);
    REQUIRE(d.size() == 1);
    CHECK(d[0].kind == drift_kind::type_change);
    CHECK(std::string(name_of(d[0].kind)) == "type_change");
    CHECK(d[0].column == "amount");
    CHECK(d[0].old_type == "numeric");
    CHECK(d[0].new_type == "numeric(12,2)");
}

TEST_CASE("drift: a column that becomes NOT NULL, or nullable again, is a nullability change", "[suggest]") {
    auto not_null = orders();
    not_null[1].nullable = false;
    SECTION("to NOT NULL") {
        const auto d = diff(orders(), not_null);
        REQUIRE(d.size() == 1);
        CHECK(d[0].kind == drift_kind::nullability_change);
        CHECK(std::string(name_of(d[0].kind)) == "nullability_change");
        CHECK(d[0].column == "note");
        CHECK_FALSE(d[0].nullable);
        CHECK(d[0].old_type == "text");
        CHECK(d[0].new_type == "text");
    }
    SECTION("back to nullable") {
        const auto d = diff(not_null, orders());
        REQUIRE(d.size() == 1);
        CHECK(d[0].kind == drift_kind::nullability_change);
        CHECK(d[0].column == "note");
        CHECK(d[0].nullable);
    }
}

TEST_CASE("drift: a type and a nullability change on one column are two drifts", "[suggest]") {
    auto after = orders();
    after[1].type = "character varying(200)";
    after[1].nullable = false;
    const auto d = diff(orders(), after);
    REQUIRE(d.size() == 2);
    CHECK(d[0].kind == drift_kind::type_change);
    CHECK(d[1].kind == drift_kind::nullability_change);
    CHECK(d[0].column == "note");
    CHECK(d[1].column == "note");
}

TEST_CASE("drift: a key that moves over existing columns is one key change naming the new and old keys", "[suggest]") {
    SECTION("another existing column becomes the key") {
        // Both NOT NULL throughout: only the key moves.
        const std::vector<column_info> before{key_col("id", "integer"), col("code", "text", false)};
        const std::vector<column_info> after{col("id", "integer", false), key_col("code", "text")};
        const auto d = diff(before, after);
        REQUIRE(d.size() == 1);
        CHECK(d[0].kind == drift_kind::key_change);
        CHECK(std::string(name_of(d[0].kind)) == "key_change");
        CHECK(d[0].column == "code");   // the new key
        CHECK(d[0].old_type == "id");   // the old key
    }
    SECTION("an existing column joins the key: the columns are listed comma-separated in order") {
        const std::vector<column_info> before{key_col("id", "integer"), col("tenant", "integer", false)};
        const std::vector<column_info> after{key_col("id", "integer"), key_col("tenant", "integer")};
        const auto d = diff(before, after);
        REQUIRE(d.size() == 1);
        CHECK(d[0].kind == drift_kind::key_change);
        CHECK(d[0].column == "id, tenant");
        CHECK(d[0].old_type == "id");
    }
}

TEST_CASE("drift: a new key column shows only as a key change (it cannot be withheld)", "[suggest]") {
    const std::vector<column_info> before{key_col("id", "integer")};
    const std::vector<column_info> after{key_col("id", "integer"), key_col("tenant", "integer")};
    const auto d = diff(before, after);
    REQUIRE(d.size() == 1);
    CHECK(d[0].kind == drift_kind::key_change);
    CHECK(d[0].column == "id, tenant");
    CHECK(d[0].old_type == "id");
}

TEST_CASE("drift: a renamed column shows as a new column and a dropped one", "[suggest]") {
    auto after = orders();
    after[1].name = "remark";
    const auto d = diff(orders(), after);
    REQUIRE(d.size() == 2);
    CHECK(d[0].kind == drift_kind::new_column);
    CHECK(d[0].column == "remark");
    CHECK(d[0].new_type == "text");
    CHECK(d[1].kind == drift_kind::dropped_column);
    CHECK(d[1].column == "note");
    CHECK(d[1].old_type == "text");
}

TEST_CASE("drift: columns that only change order give no drift", "[suggest]") {
    const std::vector<column_info> after{col("amount", "numeric"), key_col("id", "integer"), col("note", "text")};
    CHECK(diff(orders(), after).empty());
}

TEST_CASE("columns_of_json: reads the schema history's columns with their type, nullability and key", "[suggest]") {
    const auto cols = columns_of_json(R"([{"name":"id","type":"integer","nullable":false,"key":true},)"
                                      R"({"name":"note","type":"text","nullable":true,"key":false}])");
    REQUIRE(cols.size() == 2);
    CHECK(cols[0] == column_info{"id", "integer", false, true});
    CHECK(cols[1] == column_info{"note", "text", true, false});
}

TEST_CASE("columns_of_json: a column without type, nullable or key gets the defaults", "[suggest]") {
    const auto cols = columns_of_json(R"([{"name":"x"}])");
    REQUIRE(cols.size() == 1);
    CHECK(cols[0] == column_info{"x", "", true, false});
}

TEST_CASE("columns_of_json: unreadable JSON gives no columns", "[suggest]") {
    CHECK(columns_of_json("").empty());
    CHECK(columns_of_json("not json").empty());
    CHECK(columns_of_json(R"([{"name":"id","type":"integer")").empty());  // cut short
    CHECK(columns_of_json(R"({"name":"id"})").empty());                   // not an array
    CHECK(columns_of_json("[]").empty());
    SECTION("one element without a name spoils the whole list") {
        CHECK(columns_of_json(R"([{"name":"id","type":"integer"},{"type":"text"}])").empty());
        CHECK(columns_of_json(R"([{"name":"id"},42])").empty());
        CHECK(columns_of_json(R"([{"name":7}])").empty());
    }
}

TEST_CASE("columns_of: a source table's columns, with the type OID when it has no type name", "[suggest]") {
    datavor::connectors::table_schema t;
    t.schema = "public";
    t.name = "orders";
    datavor::connectors::column_def id;
    id.name = "id";
    id.type_oid = 23;
    id.type_name = "integer";
    id.key = true;
    id.nullable = false;
    datavor::connectors::column_def blob;
    blob.name = "blob";
    blob.type_oid = 99999;
    t.columns = {id, blob};
    const auto cols = columns_of(t);
    REQUIRE(cols.size() == 2);
    CHECK(cols[0] == column_info{"id", "integer", false, true});
    CHECK(cols[1] == column_info{"blob", "oid 99999", true, false});
}
