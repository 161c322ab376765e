// Test-only fixtures with the fixed names the official MCP conformance suite
// calls (test_simple_text, test://static-text, …). Built into
// datavor-conformance-server on the same server library as the product, so
// the suite exercises the real dispatcher and transports; the product binary
// never exposes these.
#include "server/conformance/fixtures.hpp"

#include "server/mcp_session.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace datavor::server::conformance {
namespace {

constexpr const char* png =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
constexpr const char* wav = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

json_doc parse(const char* text) {
    json_doc d;
    d.Parse(text);
    return d;
}

json_doc content_result(const char* content_array_json) {
    json_doc r(rapidjson::kObjectType);
    json_doc c = parse(content_array_json);
    r.AddMember("content", json_value(c, r.GetAllocator()), r.GetAllocator());
    return r;
}

std::string tool(const char* name, const char* description, const char* input_schema = R"({"type":"object","properties":{}})") {
    return std::string(R"({"name":")") + name + R"(","description":")" + description + R"(","inputSchema":)" + input_schema + "}";
}

asio::awaitable<void> sleep_ms(int ms) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<json_doc> fixed(json_doc result) { co_return result; }

asio::awaitable<json_doc> with_logging(std::shared_ptr<call_context> c) {
    c->log(log_level::info, "conformance", "Tool execution started");
    co_await sleep_ms(50);
    c->log(log_level::info, "conformance", "Tool processing data");
    co_await sleep_ms(50);
    c->log(log_level::info, "conformance", "Tool execution completed");
    co_return text_result("Tool with logging executed successfully");
}

asio::awaitable<json_doc> with_progress(std::shared_ptr<call_context> c) {
    for (int p : {0, 50, 100}) {
        c->progress(p, 100, "step " + std::to_string(p / 50 + 1) + " of 3");
        if (p != 100) co_await sleep_ms(50);
    }
    co_return text_result("Progress reported");
}

asio::awaitable<json_doc> sampling(json_doc args, std::shared_ptr<call_context> c) {
    std::string prompt(string_member(args, "prompt").value_or(""));
    json_doc req(rapidjson::kObjectType);
    auto& a = req.GetAllocator();
    json_value msgs(rapidjson::kArrayType), m(rapidjson::kObjectType), content(rapidjson::kObjectType);
    content.AddMember("type", "text", a);
    content.AddMember("text", str(prompt, a), a);
    m.AddMember("role", "user", a);
    m.AddMember("content", content, a);
    msgs.PushBack(m, a);
    req.AddMember("messages", msgs, a);
    req.AddMember("maxTokens", 100, a);
    auto r = co_await c->ask_client("sampling/createMessage", std::move(req));
    const json_value* content_out = member(r, "content");
    auto text = content_out ? string_member(*content_out, "text") : std::nullopt;
    co_return text_result("LLM response: " + std::string(text.value_or("")));
}

asio::awaitable<json_doc> elicit(json_doc params, std::shared_ptr<call_context> c) {
    try {
        auto r = co_await c->ask_client("elicitation/create", std::move(params));
        auto action = string_member(r, "action").value_or("");
        const json_value* content = member(r, "content");
        co_return text_result("User response: action=" + std::string(action) +
                              ", content=" + (content ? to_json(*content) : std::string("{}")));
    } catch (const std::runtime_error& e) {
        co_return text_result(std::string("Elicitation failed: ") + e.what());
    }
}

asio::awaitable<json_doc> elicitation(json_doc args, std::shared_ptr<call_context> c) {
    json_doc p = parse(R"({"message":"","requestedSchema":{"type":"object","properties":{
        "username":{"type":"string","description":"User's response"},
        "email":{"type":"string","description":"User's email address"}},"required":["username","email"]}})");
    p["message"].SetString(string_member(args, "message").value_or("Please provide your information").data(),
                           p.GetAllocator());
    co_return co_await elicit(std::move(p), std::move(c));
}

void add_fixed(mcp_server& s, const std::string& def, const char* content) {
    std::string copy = content;
    s.add_tool(def, [copy](json_doc, std::shared_ptr<call_context>) { return fixed(content_result(copy.c_str())); });
}

json_value text_content(json_alloc& a, const std::string& uri, const char* mime, const std::string& text) {
    json_value c(rapidjson::kObjectType);
    c.AddMember("uri", str(uri, a), a);
    c.AddMember("mimeType", str(mime, a), a);
    c.AddMember("text", str(text, a), a);
    return c;
}

json_doc prompt_result(const std::string& messages_json) {
    json_doc r(rapidjson::kObjectType);
    json_doc m = parse(messages_json.c_str());
    r.AddMember("messages", json_value(m, r.GetAllocator()), r.GetAllocator());
    return r;
}

void add_prompt(mcp_server& s, const char* def, std::function<std::optional<json_doc>(const json_value&, std::string&)> get) {
    prompt_definition p;
    p.definition.Parse(def);
    p.get = std::move(get);
    s.add_prompt(std::move(p));
}

}  // namespace

void register_fixtures(mcp_server& s) {
    add_fixed(s, tool("test_simple_text", "Returns a simple text response"),
              R"([{"type":"text","text":"This is a simple text response for testing."}])");
    add_fixed(s, tool("test_image_content", "Returns an image"),
              (std::string(R"([{"type":"image","data":")") + png + R"(","mimeType":"image/png"}])").c_str());
    add_fixed(s, tool("test_audio_content", "Returns audio"),
              (std::string(R"([{"type":"audio","data":")") + wav + R"(","mimeType":"audio/wav"}])").c_str());
    add_fixed(s, tool("test_embedded_resource", "Returns an embedded resource"),
              R"([{"type":"resource","resource":{"uri":"test://embedded-resource","mimeType":"text/plain","text":"This is an embedded resource content."}}])");
    add_fixed(s, tool("test_multiple_content_types", "Returns text, image and resource content"),
              (std::string(R"([{"type":"text","text":"Multiple content types test:"},{"type":"image","data":")") + png +
               R"(","mimeType":"image/png"},{"type":"resource","resource":{"uri":"test://mixed-content-resource","mimeType":"application/json","text":"{\"test\":\"data\",\"value\":123}"}}])")
                  .c_str());
    s.add_tool(tool("test_error_handling", "Always fails with a tool error"), [](json_doc, std::shared_ptr<call_context>) {
        return fixed(text_result("This tool intentionally returns an error for testing", true));
    });
    s.add_tool(tool("test_tool_with_logging", "Sends three log messages"),
               [](json_doc, std::shared_ptr<call_context> c) { return with_logging(std::move(c)); });
    s.add_tool(tool("test_tool_with_progress", "Reports progress three times"),
               [](json_doc, std::shared_ptr<call_context> c) { return with_progress(std::move(c)); });
    s.add_tool(tool("test_sampling", "Asks the client's model for a completion",
                    R"({"type":"object","properties":{"prompt":{"type":"string"}},"required":["prompt"]})"),
               [](json_doc a, std::shared_ptr<call_context> c) { return sampling(std::move(a), std::move(c)); });
    s.add_tool(tool("test_elicitation", "Asks the user for information",
                    R"({"type":"object","properties":{"message":{"type":"string"}},"required":["message"]})"),
               [](json_doc a, std::shared_ptr<call_context> c) { return elicitation(std::move(a), std::move(c)); });
    s.add_tool(tool("test_elicitation_sep1034_defaults", "Elicitation with default values"),
               [](json_doc, std::shared_ptr<call_context> c) {
                   return elicit(parse(R"({"message":"Please review your information","requestedSchema":{"type":"object","properties":{
                     "name":{"type":"string","title":"Name","default":"John Doe"},
                     "age":{"type":"integer","title":"Age","default":30},
                     "score":{"type":"number","title":"Score","default":95.5},
                     "status":{"type":"string","title":"Status","enum":["active","inactive","pending"],"default":"active"},
                     "verified":{"type":"boolean","title":"Verified","default":true}}}})"),
                                 std::move(c));
               });
    s.add_tool(tool("test_elicitation_sep1330_enums", "Elicitation with every enum form"),
               [](json_doc, std::shared_ptr<call_context> c) {
                   return elicit(parse(R"({"message":"Choose options","requestedSchema":{"type":"object","properties":{
                     "untitledSingle":{"type":"string","enum":["option1","option2","option3"]},
                     "titledSingle":{"type":"string","oneOf":[{"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},
                     "legacyEnum":{"type":"string","enum":["opt1","opt2","opt3"],"enumNames":["Option One","Option Two","Option Three"]},
                     "untitledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"type":"string","enum":["option1","option2","option3"]}},
                     "titledMulti":{"type":"array","minItems":1,"maxItems":3,"items":{"anyOf":[{"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}
                     },"required":[]}})"),
                                 std::move(c));
               });
    s.add_tool(R"({"name":"json_schema_2020_12_tool","description":"Tool with a JSON Schema 2020-12 input schema",
        "inputSchema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
        "$defs":{"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},
        "properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"}},"additionalProperties":false}})",
               [](json_doc a, std::shared_ptr<call_context>) { return fixed(text_result("Received: " + to_json(a))); });

    resource_provider res;
    res.list = [](json_value& out, json_alloc& a) {
        for (auto [uri, name, mime] : {std::tuple{"test://static-text", "static-text", "text/plain"},
                                       std::tuple{"test://static-binary", "static-binary", "image/png"},
                                       std::tuple{"test://watched-resource", "watched-resource", "text/plain"}}) {
            json_value r(rapidjson::kObjectType);
            r.AddMember("uri", str(uri, a), a);
            r.AddMember("name", str(name, a), a);
            r.AddMember("description", str(std::string("Conformance fixture ") + name, a), a);
            r.AddMember("mimeType", str(mime, a), a);
            out.PushBack(r, a);
        }
    };
    res.templates = [](json_value& out, json_alloc& a) {
        json_value t(rapidjson::kObjectType);
        t.AddMember("uriTemplate", "test://template/{id}/data", a);
        t.AddMember("name", "template", a);
        t.AddMember("description", "Conformance fixture template", a);
        t.AddMember("mimeType", "application/json", a);
        out.PushBack(t, a);
    };
    res.read = [](const std::string& uri, json_value& out, json_alloc& a) {
        if (uri == "test://static-text") {
            out.PushBack(text_content(a, uri, "text/plain", "This is the content of the static text resource."), a);
        } else if (uri == "test://watched-resource") {
            out.PushBack(text_content(a, uri, "text/plain", "Watched resource content"), a);
        } else if (uri == "test://static-binary") {
            json_value c(rapidjson::kObjectType);
            c.AddMember("uri", str(uri, a), a);
            c.AddMember("mimeType", "image/png", a);
            c.AddMember("blob", str(png, a), a);
            out.PushBack(c, a);
        } else if (uri.starts_with("test://template/") && uri.ends_with("/data")) {
            std::string id = uri.substr(16, uri.size() - 16 - 5);
            out.PushBack(text_content(a, uri, "application/json",
                                      R"({"id":")" + id + R"(","templateTest":true,"data":"Data for ID: )" + id + "\"}"),
                         a);
        } else {
            return false;
        }
        return true;
    };
    s.add_resources(std::move(res));

    add_prompt(s, R"({"name":"test_simple_prompt","description":"A simple prompt without arguments"})",
               [](const json_value&, std::string&) -> std::optional<json_doc> {
                   return prompt_result(R"([{"role":"user","content":{"type":"text","text":"This is a simple prompt for testing."}}])");
               });
    add_prompt(s, R"({"name":"test_prompt_with_arguments","description":"A prompt with two arguments",
        "arguments":[{"name":"arg1","description":"First argument","required":true},{"name":"arg2","description":"Second argument","required":true}]})",
               [](const json_value& args, std::string& error) -> std::optional<json_doc> {
                   auto a1 = string_member(args, "arg1"), a2 = string_member(args, "arg2");
                   if (!a1 || !a2) {
                       error = "arguments arg1 and arg2 are required";
                       return std::nullopt;
                   }
                   json_doc text(rapidjson::kStringType);
                   std::string t = "Prompt with arguments: arg1='" + std::string(*a1) + "', arg2='" + std::string(*a2) + "'";
                   text.SetString(t.c_str(), text.GetAllocator());
                   return prompt_result(R"([{"role":"user","content":{"type":"text","text":)" + to_json(text) + "}}]");
               });
    add_prompt(s, R"({"name":"test_prompt_with_embedded_resource","description":"A prompt with an embedded resource",
        "arguments":[{"name":"resourceUri","description":"URI of the resource to embed","required":true}]})",
               [](const json_value& args, std::string& error) -> std::optional<json_doc> {
                   auto uri = string_member(args, "resourceUri");
                   if (!uri) {
                       error = "argument resourceUri is required";
                       return std::nullopt;
                   }
                   json_doc u(rapidjson::kStringType);
                   u.SetString(uri->data(), static_cast<rapidjson::SizeType>(uri->size()), u.GetAllocator());
                   return prompt_result(R"([{"role":"user","content":{"type":"resource","resource":{"uri":)" + to_json(u) +
                                        R"(,"mimeType":"text/plain","text":"Embedded resource content for testing."}}},
                        {"role":"user","content":{"type":"text","text":"Please process the embedded resource above."}}])");
               });
    add_prompt(s, R"({"name":"test_prompt_with_image","description":"A prompt with an image"})",
               [](const json_value&, std::string&) -> std::optional<json_doc> {
                   return prompt_result(std::string(R"([{"role":"user","content":{"type":"image","data":")") + png +
                                        R"(","mimeType":"image/png"}},{"role":"user","content":{"type":"text","text":"Please analyze the image above."}}])");
               });
    s.add_completion([](const json_value&, std::string_view, std::string_view value, const json_value*) {
        std::vector<std::string> out;
        for (const char* v : {"test", "testing", "tested"})
            if (std::string_view(v).starts_with(value)) out.emplace_back(v);
        return out;
    });
}

}  // namespace datavor::server::conformance
