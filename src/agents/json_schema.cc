#include "agents/json_schema.h"

#include <nlohmann/json.hpp>

namespace keel::agents {
namespace {

std::string Short(const Json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

bool HasType(const Json& v, const std::string& t) {
  if (t == "string") return v.is_string();
  if (t == "number") return v.is_number();
  if (t == "integer") {
    if (v.is_number_integer()) return true;
    if (v.is_number_float()) {
      double d = v.get<double>();
      return d == static_cast<double>(static_cast<int64_t>(d));
    }
    return false;
  }
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "null") return v.is_null();
  return false;
}

size_t Utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Ptr(const std::string& path) {
  return path.empty() ? "/" : path;
}

Status Validate(const Json& schema, const Json& v, const std::string& path) {
  if (!schema.is_object()) return OkStatus();
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    bool ok = false;
    if (t.is_string()) ok = HasType(v, t.get<std::string>());
    if (t.is_array()) {
      for (const Json& x : t) ok = ok || (x.is_string() && HasType(v, x.get<std::string>()));
    }
    if (!ok) {
      return InvalidArgument(Ptr(path) + ": " + Short(v) + " is not of type " +
                             (t.is_string() ? t.get<std::string>() : t.dump()));
    }
  }
  if (schema.contains("enum") && schema["enum"].is_array()) {
    bool found = false;
    for (const Json& e : schema["enum"]) found = found || e == v;
    if (!found) {
      return InvalidArgument(Ptr(path) + ": " + Short(v) + " is not one of " +
                             Short(schema["enum"]));
    }
  }
  if (v.is_number()) {
    double d = v.get<double>();
    if (schema.contains("minimum") && schema["minimum"].is_number() &&
        d < schema["minimum"].get<double>()) {
      return InvalidArgument(Ptr(path) + ": " + Short(v) + " is less than the minimum " +
                             schema["minimum"].dump());
    }
    if (schema.contains("maximum") && schema["maximum"].is_number() &&
        d > schema["maximum"].get<double>()) {
      return InvalidArgument(Ptr(path) + ": " + Short(v) + " is greater than the maximum " +
                             schema["maximum"].dump());
    }
  }
  if (v.is_string()) {
    size_t n = Utf8Length(v.get_ref<const std::string&>());
    if (schema.contains("maxLength") && schema["maxLength"].is_number_unsigned() &&
        n > schema["maxLength"].get<size_t>()) {
      return InvalidArgument(Ptr(path) + ": a string of " + std::to_string(n) +
                             " characters is longer than maxLength " + schema["maxLength"].dump());
    }
    if (schema.contains("minLength") && schema["minLength"].is_number_unsigned() &&
        n < schema["minLength"].get<size_t>()) {
      return InvalidArgument(Ptr(path) + ": a string of " + std::to_string(n) +
                             " characters is shorter than minLength " + schema["minLength"].dump());
    }
  }
  if (v.is_object()) {
    if (schema.contains("required") && schema["required"].is_array()) {
      for (const Json& r : schema["required"]) {
        if (r.is_string() && !v.contains(r.get<std::string>())) {
          return InvalidArgument(Ptr(path) + ": the required property '" + r.get<std::string>() +
                                 "' is missing");
        }
      }
    }
    const Json* props = schema.contains("properties") && schema["properties"].is_object()
                            ? &schema["properties"]
                            : nullptr;
    bool closed = schema.contains("additionalProperties") &&
                  schema["additionalProperties"].is_boolean() &&
                  !schema["additionalProperties"].get<bool>();
    for (auto it = v.begin(); it != v.end(); ++it) {
      std::string child = path + "/" + it.key();
      if (props != nullptr && props->contains(it.key())) {
        KEEL_RETURN_IF_ERROR(Validate((*props)[it.key()], it.value(), child));
      } else if (closed) {
        return InvalidArgument(Ptr(path) + ": the property '" + it.key() + "' is not allowed");
      }
    }
  }
  if (v.is_array()) {
    if (schema.contains("maxItems") && schema["maxItems"].is_number_unsigned() &&
        v.size() > schema["maxItems"].get<size_t>()) {
      return InvalidArgument(Ptr(path) + ": " + std::to_string(v.size()) +
                             " items are more than maxItems " + schema["maxItems"].dump());
    }
    if (schema.contains("items") && schema["items"].is_object()) {
      for (size_t i = 0; i < v.size(); ++i) {
        KEEL_RETURN_IF_ERROR(Validate(schema["items"], v[i], path + "/" + std::to_string(i)));
      }
    }
  }
  return OkStatus();
}

Status Check(const Json& s, const std::string& path) {
  if (!s.is_object()) return InvalidArgument("schema" + path + " must be an object");
  static const char* kTypes[] = {"string", "number", "integer", "boolean",
                                 "object", "array",  "null"};
  auto known = [](const Json& t) {
    if (!t.is_string()) return false;
    for (const char* k : kTypes) {
      if (t.get<std::string>() == k) return true;
    }
    return false;
  };
  if (s.contains("type")) {
    const Json& t = s["type"];
    bool ok = known(t);
    if (t.is_array()) {
      ok = !t.empty();
      for (const Json& x : t) ok = ok && known(x);
    }
    if (!ok) return InvalidArgument("schema" + Ptr(path) + ": unknown type " + Short(t));
  }
  if (s.contains("required")) {
    bool ok = s["required"].is_array();
    if (ok) {
      for (const Json& r : s["required"]) ok = ok && r.is_string();
    }
    if (!ok) return InvalidArgument("schema" + Ptr(path) + ": required must be a list of names");
  }
  if (s.contains("enum") && !s["enum"].is_array()) {
    return InvalidArgument("schema" + Ptr(path) + ": enum must be a list");
  }
  for (const char* k : {"minimum", "maximum"}) {
    if (s.contains(k) && !s[k].is_number()) {
      return InvalidArgument("schema" + Ptr(path) + ": " + k + " must be a number");
    }
  }
  for (const char* k : {"maxLength", "minLength", "maxItems"}) {
    if (s.contains(k) && !s[k].is_number_unsigned()) {
      return InvalidArgument("schema" + Ptr(path) + ": " + k + " must be a non-negative integer");
    }
  }
  if (s.contains("properties")) {
    if (!s["properties"].is_object()) {
      return InvalidArgument("schema" + Ptr(path) + ": properties must be a mapping");
    }
    for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
      KEEL_RETURN_IF_ERROR(Check(it.value(), path + "/properties/" + it.key()));
    }
  }
  if (s.contains("items")) KEEL_RETURN_IF_ERROR(Check(s["items"], path + "/items"));
  return OkStatus();
}

}  // namespace

Status ValidateJson(const Json& schema, const Json& value) {
  return Validate(schema, value, "");
}

Status CheckSchema(const Json& schema) {
  return Check(schema, "");
}

}  // namespace keel::agents
