#include "flow/edit.h"

namespace keel::flow {

using nlohmann::json;

namespace {

std::string TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "an object";
    default:
      return "binary";
  }
}

bool SameType(const json& a, const json& b) {
  return (a.is_number() && b.is_number()) || a.type() == b.type();
}

// J is json or const json: one walk for reading and for writing.
template <typename J>
J* Walk(const Step& s, J* steps, J* vars) {
  if (s.edit_path.size() < 2) return nullptr;
  J* v = s.edit_path[0] == "steps" ? steps : vars;
  for (size_t i = 1; i < s.edit_path.size(); ++i) {
    if (v == nullptr || !v->is_object()) return nullptr;
    auto it = v->find(s.edit_path[i]);
    if (it == v->end()) return nullptr;
    v = &*it;
  }
  return v == nullptr || v->is_null() ? nullptr : v;
}

}  // namespace

const json* EditTarget(const Step& s, const json& steps, const json& vars) {
  return Walk(s, &steps, &vars);
}

Status CheckEdit(const Step& s, const json* current, const json& edit) {
  if (s.edit_path.empty()) {
    return FailedPrecondition(
        "this approval does not declare an editable value; the workflow would ignore the "
        "edit; approve without --edit or add `edit:` to step " +
        s.id + "'s approval");
  }
  if (current == nullptr) {
    return FailedPrecondition("the editable value " + s.edit + " of step " + s.id +
                              " has no value in this run (the step that makes it did not "
                              "run); approve without --edit");
  }
  if (!current->is_object()) {
    if (!SameType(*current, edit)) {
      return InvalidArgument("the edit of " + s.edit + " must be " + TypeName(*current) +
                             " like the value it replaces, not " + TypeName(edit));
    }
    return OkStatus();
  }
  if (!edit.is_object()) {
    return InvalidArgument("the edit of " + s.edit +
                           " must be a JSON object with some of its keys, not " + TypeName(edit));
  }
  if (edit.empty()) {
    return InvalidArgument("the edit of " + s.edit +
                           " changes nothing (an empty object); approve without --edit");
  }
  std::string keys;
  for (auto it = current->begin(); it != current->end(); ++it)
    keys += (keys.empty() ? "" : ", ") + it.key();
  for (auto it = edit.begin(); it != edit.end(); ++it) {
    auto have = current->find(it.key());
    if (have == current->end()) {
      return InvalidArgument("the edit of " + s.edit + " has key '" + it.key() +
                             "', which the value does not have (its keys: " + keys +
                             "); an edit changes existing keys only");
    }
    if (!have->is_null() && !SameType(*have, it.value())) {
      return InvalidArgument("the edit of " + s.edit + ": '" + it.key() + "' must be " +
                             TypeName(*have) + " like the value it replaces, not " +
                             TypeName(it.value()));
    }
  }
  return OkStatus();
}

Status ApplyEdit(const Step& s, const json& edit, json* steps, json* vars) {
  json* target = Walk(s, steps, vars);
  KEEL_RETURN_IF_ERROR(CheckEdit(s, target, edit));
  if (!target->is_object()) {
    *target = edit;
    return OkStatus();
  }
  for (auto it = edit.begin(); it != edit.end(); ++it) (*target)[it.key()] = it.value();
  return OkStatus();
}

}  // namespace keel::flow
