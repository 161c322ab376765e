#include "server/jsonrpc.hpp"

#include <rapidjson/error/en.h>

namespace datavor::server::jsonrpc {
namespace {

bool valid_id(const json_value& id) {
    return id.IsString() || id.IsInt64() || id.IsUint64();
}

void write_envelope_start(rapidjson::Writer<rapidjson::StringBuffer>& w) {
    w.StartObject();
    w.Key("jsonrpc");
    w.String("2.0");
}

void write_id(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view id) {
    w.Key("id");
    w.RawValue(id.data(), id.size(), rapidjson::kNumberType);
}

std::string finish(rapidjson::StringBuffer& buf) { return {buf.GetString(), buf.GetSize()}; }

}  // namespace

const json_value* message::params() const { return member(doc, "params"); }

boost::system::result<message, failure> parse(std::string_view text) {
    message m;
    m.doc.Parse(text.data(), text.size());
    if (m.doc.HasParseError()) {
        return failure{parse_error,
                       std::string("Parse error: ") + rapidjson::GetParseError_En(m.doc.GetParseError()) +
                           " at offset " + std::to_string(m.doc.GetErrorOffset()) +
                           ". Send one JSON-RPC 2.0 object per line."};
    }
    if (m.doc.IsArray())
        return failure{invalid_request, "Invalid Request: JSON-RPC batches are not supported; send one message at a time."};
    if (!m.doc.IsObject()) return failure{invalid_request, "Invalid Request: a JSON-RPC message must be an object."};

    failure f;
    const json_value* id = member(m.doc, "id");
    if (id && valid_id(*id)) f.id = to_json(*id);
    auto version = string_member(m.doc, "jsonrpc");
    if (!version || *version != "2.0") {
        f.message = "Invalid Request: \"jsonrpc\" must be \"2.0\".";
        return f;
    }
    if (const json_value* method = member(m.doc, "method")) {
        if (!method->IsString()) {
            f.message = "Invalid Request: \"method\" must be a string.";
            return f;
        }
        m.method.assign(method->GetString(), method->GetStringLength());
        if (const json_value* p = member(m.doc, "params"); p && !p->IsObject()) {
            f.code = p->IsArray() ? invalid_params : invalid_request;
            f.message = "Invalid params: \"params\" must be an object.";
            return f;
        }
        if (!id) {
            m.k = kind::notification;
            return m;
        }
        if (!valid_id(*id)) {
            f.message = "Invalid Request: \"id\" must be a string or an integer.";
            return f;
        }
        m.k = kind::request;
        m.id = f.id;
        return m;
    }
    if (id && (member(m.doc, "result") || member(m.doc, "error"))) {
        if (!valid_id(*id) && !id->IsNull()) {
            f.message = "Invalid Request: response \"id\" must be a string or an integer.";
            return f;
        }
        m.k = kind::response;
        m.id = to_json(*id);
        return m;
    }
    f.message = "Invalid Request: a message needs \"method\" (request or notification) or \"result\"/\"error\" with \"id\" (response).";
    return f;
}

std::string make_result(std::string_view id, const json_value& result) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    write_envelope_start(w);
    write_id(w, id);
    w.Key("result");
    result.Accept(w);
    w.EndObject();
    return finish(buf);
}

std::string make_error(std::string_view id, int code, std::string_view message, const json_value* data) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    write_envelope_start(w);
    write_id(w, id.empty() ? std::string_view("null") : id);
    w.Key("error");
    w.StartObject();
    w.Key("code");
    w.Int(code);
    w.Key("message");
    w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    if (data) {
        w.Key("data");
        data->Accept(w);
    }
    w.EndObject();
    w.EndObject();
    return finish(buf);
}

std::string make_notification(std::string_view method, const json_value& params) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    write_envelope_start(w);
    w.Key("method");
    w.String(method.data(), static_cast<rapidjson::SizeType>(method.size()));
    w.Key("params");
    params.Accept(w);
    w.EndObject();
    return finish(buf);
}

std::string make_request(std::string_view id, std::string_view method, const json_value& params) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    write_envelope_start(w);
    write_id(w, id);
    w.Key("method");
    w.String(method.data(), static_cast<rapidjson::SizeType>(method.size()));
    w.Key("params");
    params.Accept(w);
    w.EndObject();
    return finish(buf);
}

}  // namespace datavor::server::jsonrpc
