#include "emulator/data/soql.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <functional>

#include "emulator/data/values.hpp"

namespace sfstream::emulator::data {
namespace {

constexpr char like_any = '\x01';
constexpr char like_one = '\x02';

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

struct token {
  enum class kind { ident, number, string, date, datetime, symbol, end };
  kind type = kind::end;
  std::string text;    ///< Source text (symbols and identifiers) or decoded value (strings).
  std::string like;    ///< Strings: the LIKE pattern with wildcard markers.
  std::size_t at = 0;  ///< Offset in the query.
};

/// Thrown inside the parser only; turned into api_error at its boundary.
struct soql_failure {
  std::string code;
  std::string text;
  std::size_t at;
};

std::string error_message(std::string_view query, std::size_t at, const std::string& text) {
  std::size_t row = 1, line_start = 0;
  for (std::size_t i = 0; i < at && i < query.size(); ++i)
    if (query[i] == '\n') {
      ++row;
      line_start = i + 1;
    }
  std::size_t line_end = query.find('\n', line_start);
  if (line_end == std::string_view::npos) line_end = query.size();
  const std::size_t column = at - line_start + 1;
  return "\n" + std::string(query.substr(line_start, line_end - line_start)) + "\n" + std::string(column - 1, ' ') +
         "^\nERROR at Row:" + std::to_string(row) + ":Column:" + std::to_string(column) + "\n" + text;
}

std::vector<token> tokenize(std::string_view q) {
  std::vector<token> out;
  std::size_t i = 0;
  auto is_ident_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; };
  while (i < q.size()) {
    const char c = q[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    token t;
    t.at = i;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < q.size() && is_ident_char(q[j])) ++j;
      t.type = token::kind::ident;
      t.text = std::string(q.substr(i, j - i));
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '-' && i + 1 < q.size() && std::isdigit(static_cast<unsigned char>(q[i + 1])))) {
      std::size_t j = i + 1;
      const bool date_like = i + 4 < q.size() && q[i + 4] == '-' && c != '-';
      if (date_like) {
        while (j < q.size() && (std::isdigit(static_cast<unsigned char>(q[j])) || std::string_view("-T:.Z+tz").find(q[j]) != std::string_view::npos))
          ++j;
        t.text = std::string(q.substr(i, j - i));
        if (parse_date(t.text)) {
          t.type = token::kind::date;
        } else if (auto dt = parse_datetime(t.text)) {
          t.type = token::kind::datetime;
          t.text = *dt;
        } else {
          throw soql_failure{"MALFORMED_QUERY", "line 1:" + std::to_string(i) + " no viable alternative at character '" + t.text + "'", i};
        }
      } else {
        while (j < q.size() && (std::isdigit(static_cast<unsigned char>(q[j])) || q[j] == '.')) ++j;
        t.type = token::kind::number;
        t.text = std::string(q.substr(i, j - i));
        if (std::count(t.text.begin(), t.text.end(), '.') > 1 || t.text.back() == '.')
          throw soql_failure{"MALFORMED_QUERY", "unexpected token: '" + t.text + "'", i};
      }
      i = j;
    } else if (c == '\'') {
      std::size_t j = i + 1;
      bool closed = false;
      while (j < q.size()) {
        const char d = q[j];
        if (d == '\'') {
          closed = true;
          ++j;
          break;
        }
        if (d == '\\') {
          if (j + 1 >= q.size()) break;
          const char e = q[j + 1];
          char decoded = 0;
          switch (e) {
            case 'n': decoded = '\n'; break;
            case 'r': decoded = '\r'; break;
            case 't': decoded = '\t'; break;
            case 'b': decoded = '\b'; break;
            case 'f': decoded = '\f'; break;
            case '"': case '\'': case '\\': case '%': case '_': decoded = e; break;
            default:
              throw soql_failure{"MALFORMED_QUERY",
                                 "Invalid string literal '" + std::string(q.substr(i + 1, j - i)) +
                                     "'. Illegal character sequence '\\" + std::string(1, e) + "' in string literal.",
                                 i};
          }
          t.text += decoded;
          t.like += decoded;
          j += 2;
          continue;
        }
        t.text += d;
        t.like += d == '%' ? like_any : d == '_' ? like_one : d;
        ++j;
      }
      if (!closed) throw soql_failure{"MALFORMED_QUERY", "line 1:" + std::to_string(i) + " mismatched character '<EOF>' expecting '''", i};
      t.type = token::kind::string;
      i = j;
    } else {
      static constexpr std::string_view two[] = {"!=", "<>", "<=", ">="};
      t.type = token::kind::symbol;
      for (auto s : two)
        if (q.substr(i, 2) == s) t.text = std::string(s);
      if (t.text.empty()) {
        if (std::string_view("=<>(),:").find(c) == std::string_view::npos)
          throw soql_failure{"MALFORMED_QUERY", "line 1:" + std::to_string(i) + " no viable alternative at character '" + std::string(1, c) + "'", i};
        t.text = std::string(1, c);
      }
      i += t.text.size();
    }
    out.push_back(std::move(t));
  }
  token end;
  end.type = token::kind::end;
  end.at = q.size();
  out.push_back(end);
  return out;
}

const char* type_name(field_type t) {
  switch (t) {
    case field_type::number: return "double";
    case field_type::boolean: return "boolean";
    case field_type::date: return "date";
    case field_type::datetime: return "dateTime";
    default: return "string";
  }
}

bool is_text(field_type t) {
  return t == field_type::string || t == field_type::textarea || t == field_type::id || t == field_type::reference;
}

class parser {
 public:
  parser(std::string_view text, const schema& objects) : text_(text), objects_(objects), tokens_(tokenize(text)) {}

  soql_query parse() {
    soql_query q;
    q.text = std::string(text_);
    expect_keyword("select");
    struct pending_field {
      std::string name;
      std::size_t at;
    };
    std::vector<pending_field> fields;
    if (is_keyword("count") && tokens_[pos_ + 1].text == "(") {
      pos_ += 2;
      expect_symbol(")");
      q.count_only = true;
    } else {
      do {
        const token& t = next();
        if (t.type != token::kind::ident || is_reserved(t.text)) fail_unexpected(t);
        fields.push_back({t.text, t.at});
      } while (accept_symbol(","));
    }
    expect_keyword("from");
    const token& object_token = next();
    if (object_token.type != token::kind::ident || is_reserved(object_token.text)) fail_unexpected(object_token);
    q.object = objects_.find(object_token.text);
    if (!q.object || q.object->kind == object_kind::platform_event)
      throw soql_failure{"INVALID_TYPE",
                         "sObject type '" + object_token.text +
                             "' is not supported. If you are attempting to use a custom object, be sure to append the "
                             "'__c' after the entity name. Please reference your WSDL or the describe call for the "
                             "appropriate names.",
                         object_token.at};
    object_ = q.object;
    for (const auto& f : fields) {
      const field_def* def = bind(f.name, f.at);
      if (std::find(q.select.begin(), q.select.end(), def) != q.select.end())
        throw soql_failure{"MALFORMED_QUERY", "duplicate field selected: " + def->name, f.at};
      q.select.push_back(def);
    }
    if (accept_keyword("where")) q.where = condition();
    if (accept_keyword("order")) {
      expect_keyword("by");
      do {
        const token& t = next();
        if (t.type != token::kind::ident || is_reserved(t.text)) fail_unexpected(t);
        soql_order o;
        o.field = bind(t.text, t.at);
        if (!o.field->filterable())
          throw soql_failure{"INVALID_FIELD", "field '" + o.field->name + "' can not be sorted in a query call", t.at};
        if (accept_keyword("desc"))
          o.descending = true;
        else
          accept_keyword("asc");
        o.nulls_first = !o.descending;
        if (accept_keyword("nulls")) {
          if (accept_keyword("first"))
            o.nulls_first = true;
          else if (accept_keyword("last"))
            o.nulls_first = false;
          else
            fail_unexpected(tokens_[pos_]);
        }
        q.order.push_back(o);
      } while (accept_symbol(","));
    }
    if (accept_keyword("limit")) q.limit = count_value();
    if (accept_keyword("offset")) {
      const std::size_t at = tokens_[pos_].at;
      q.offset = count_value();
      if (q.offset > 2000) throw soql_failure{"NUMBER_OUTSIDE_VALID_RANGE", "maximum SOQL offset allowed is 2000", at};
    }
    if (tokens_[pos_].type != token::kind::end) fail_unexpected(tokens_[pos_]);
    return q;
  }

 private:
  static bool is_reserved(const std::string& word) {
    static const char* const reserved[] = {"select", "from", "where", "order", "by", "limit", "offset", "and",
                                           "or",     "not",  "in",    "like",  "asc", "desc",  "nulls",  "null"};
    const std::string w = lower(word);
    return std::any_of(std::begin(reserved), std::end(reserved), [&](const char* r) { return w == r; });
  }

  [[noreturn]] void fail_unexpected(const token& t) {
    const std::string shown = t.type == token::kind::end ? "<EOF>" : t.type == token::kind::string ? "'" + t.text + "'" : t.text;
    throw soql_failure{"MALFORMED_QUERY", "unexpected token: '" + shown + "'", t.at};
  }

  const token& next() {
    const token& t = tokens_[pos_];
    if (t.type != token::kind::end) ++pos_;
    return t;
  }
  bool is_keyword(const char* word) const {
    return tokens_[pos_].type == token::kind::ident && iequals(tokens_[pos_].text, word);
  }
  bool accept_keyword(const char* word) {
    if (!is_keyword(word)) return false;
    ++pos_;
    return true;
  }
  void expect_keyword(const char* word) {
    if (!accept_keyword(word)) fail_unexpected(tokens_[pos_]);
  }
  bool accept_symbol(const char* s) {
    if (tokens_[pos_].type != token::kind::symbol || tokens_[pos_].text != s) return false;
    ++pos_;
    return true;
  }
  void expect_symbol(const char* s) {
    if (!accept_symbol(s)) fail_unexpected(tokens_[pos_]);
  }

  std::size_t count_value() {
    const token& t = next();
    if (t.type != token::kind::number || t.text.find_first_of(".-") != std::string::npos || t.text.size() > 9)
      fail_unexpected(t);
    return static_cast<std::size_t>(std::strtoull(t.text.c_str(), nullptr, 10));
  }

  const field_def* bind(const std::string& name, std::size_t at) {
    if (name.find('.') != std::string::npos)
      throw soql_failure{"INVALID_FIELD",
                         "Didn't understand relationship '" + name.substr(0, name.find('.')) +
                             "' in field path. If you are attempting to use a custom relationship, be sure to append "
                             "the '__r' after the custom relationship name. Please reference your WSDL or the "
                             "describe call for the appropriate names.",
                         at};
    const field_def* def = object_->find_field(name);
    if (!def)
      throw soql_failure{"INVALID_FIELD",
                         "No such column '" + name + "' on entity '" + object_->name +
                             "'. If you are attempting to use a custom field, be sure to append the '__c' after the "
                             "custom field name. Please reference your WSDL or the describe call for the appropriate "
                             "names.",
                         at};
    return def;
  }

  soql_condition condition() {
    soql_condition first = unary();
    if (!is_keyword("and") && !is_keyword("or")) return first;
    const bool conjunction = is_keyword("and");
    soql_condition joined;
    joined.type = conjunction ? soql_condition::kind::all_of : soql_condition::kind::any_of;
    joined.children.push_back(std::move(first));
    while (is_keyword("and") || is_keyword("or")) {
      if (is_keyword("and") != conjunction) fail_unexpected(tokens_[pos_]);
      ++pos_;
      joined.children.push_back(unary());
    }
    return joined;
  }

  soql_condition unary() {
    // Bounded recursion: Salesforce's own parser refuses absurd nesting too.
    if (++depth_ > 64) throw soql_failure{"MALFORMED_QUERY", "expression nesting is too deep", tokens_[pos_].at};
    struct leave {
      int& depth;
      ~leave() { --depth; }
    } guard{depth_};
    if (accept_keyword("not")) {
      soql_condition n;
      n.type = soql_condition::kind::negation;
      n.children.push_back(unary());
      return n;
    }
    if (accept_symbol("(")) {
      soql_condition inner = condition();
      expect_symbol(")");
      return inner;
    }
    return comparison();
  }

  soql_condition comparison() {
    const token& f = next();
    if (f.type != token::kind::ident || is_reserved(f.text)) fail_unexpected(f);
    soql_condition c;
    c.field = bind(f.text, f.at);
    if (!c.field->filterable())
      throw soql_failure{"INVALID_FIELD", "field '" + c.field->name + "' can not be filtered in a query call", f.at};
    const token& op = tokens_[pos_];
    if (accept_keyword("like")) {
      c.type = soql_condition::kind::like;
      const token& v = next();
      if (v.type != token::kind::string) fail_unexpected(v);
      if (!is_text(c.field->type) && c.field->type != field_type::date && c.field->type != field_type::datetime)
        throw soql_failure{"INVALID_FIELD", "invalid operator on " + std::string(type_name(c.field->type)) + " field", op.at};
      soql_literal l;
      l.type = soql_literal::kind::string;
      l.value = lower(v.like);
      c.values.push_back(l);
      return c;
    }
    if (accept_keyword("in") || (is_keyword("not") && iequals(tokens_[pos_ + 1].text, "in") && (pos_ += 2))) {
      c.type = iequals(op.text, "not") ? soql_condition::kind::not_in : soql_condition::kind::in;
      expect_symbol("(");
      do c.values.push_back(literal(*c.field));
      while (accept_symbol(","));
      expect_symbol(")");
      return c;
    }
    static constexpr std::pair<std::string_view, soql_condition::op> ops[] = {
        {"=", soql_condition::op::eq},  {"!=", soql_condition::op::ne}, {"<>", soql_condition::op::ne},
        {"<", soql_condition::op::lt},  {"<=", soql_condition::op::le}, {">", soql_condition::op::gt},
        {">=", soql_condition::op::ge}};
    bool found = false;
    if (op.type == token::kind::symbol)
      for (const auto& [text, o] : ops)
        if (op.text == text) {
          c.comparison = o;
          found = true;
        }
    if (!found) fail_unexpected(op);
    ++pos_;
    c.values.push_back(literal(*c.field));
    if (c.values.back().type == soql_literal::kind::null && c.comparison != soql_condition::op::eq &&
        c.comparison != soql_condition::op::ne)
      throw soql_failure{"INVALID_FIELD", "invalid operator on null value", op.at};
    return c;
  }

  [[noreturn]] void wrong_type(const field_def& f, std::size_t at, bool quoted_expected) {
    throw soql_failure{"INVALID_FIELD",
                       "value of filter criterion for field '" + f.name + "' must be of type " + type_name(f.type) +
                           (quoted_expected ? " and should be enclosed in quotes" : " and should not be enclosed in quotes"),
                       at};
  }

  soql_literal literal(const field_def& f) {
    const token& t = next();
    soql_literal l;
    if (t.type == token::kind::ident && iequals(t.text, "null")) return l;
    switch (f.type) {
      case field_type::string:
      case field_type::textarea:
        if (t.type != token::kind::string) wrong_type(f, t.at, true);
        l.type = soql_literal::kind::string;
        l.value = t.text;
        return l;
      case field_type::id:
      case field_type::reference: {
        if (t.type != token::kind::string) wrong_type(f, t.at, true);
        std::string id = to_id18(t.text);
        if (id.empty()) throw soql_failure{"INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: " + t.text, t.at};
        l.type = soql_literal::kind::string;
        l.value = id;
        return l;
      }
      case field_type::number:
        if (t.type != token::kind::number) wrong_type(f, t.at, false);
        l.type = soql_literal::kind::number;
        l.value = std::strtod(t.text.c_str(), nullptr);
        return l;
      case field_type::boolean:
        if (t.type != token::kind::ident || (!iequals(t.text, "true") && !iequals(t.text, "false"))) wrong_type(f, t.at, false);
        l.type = soql_literal::kind::boolean;
        l.value = iequals(t.text, "true");
        return l;
      case field_type::date:
      case field_type::datetime: {
        const auto wanted = f.type == field_type::date ? token::kind::date : token::kind::datetime;
        if (t.type == wanted) {
          l.type = f.type == field_type::date ? soql_literal::kind::date : soql_literal::kind::datetime;
          l.value = t.text;
          return l;
        }
        if (t.type == token::kind::ident && relative(t, l)) return l;
        wrong_type(f, t.at, false);
      }
    }
    wrong_type(f, t.at, false);
  }

  bool relative(const token& t, soql_literal& l) {
    const std::string word = lower(t.text);
    l.type = soql_literal::kind::relative_date;
    if (word == "today") {
      l.first_day = 0;
      l.end_day = 1;
      return true;
    }
    if (word == "yesterday") {
      l.first_day = -1;
      l.end_day = 0;
      return true;
    }
    if (word == "tomorrow") {
      l.first_day = 1;
      l.end_day = 2;
      return true;
    }
    if (word == "last_n_days" || word == "next_n_days") {
      expect_symbol(":");
      const auto n = static_cast<std::int64_t>(count_value());
      if (word == "last_n_days") {
        l.first_day = -n;
        l.end_day = 1;
      } else {
        l.first_day = 1;
        l.end_day = n + 1;
      }
      return true;
    }
    return false;
  }

  std::string_view text_;
  const schema& objects_;
  std::vector<token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  const object_def* object_ = nullptr;
};

const field_value& value_of(const field_map& fields, const std::string& name) {
  static const field_value null_value;
  auto it = fields.find(name);
  return it == fields.end() ? null_value : it->second;
}

/// -1, 0, 1 for two non-null values of the same field type.
int compare_values(const field_value& a, const field_value& b, field_type type) {
  if (const auto* x = std::get_if<double>(&a)) {
    const double y = std::holds_alternative<double>(b) ? std::get<double>(b) : 0.0;
    return *x < y ? -1 : *x > y ? 1 : 0;
  }
  if (const auto* x = std::get_if<bool>(&a)) {
    const bool y = std::holds_alternative<bool>(b) && std::get<bool>(b);
    return static_cast<int>(*x) - static_cast<int>(y);
  }
  const std::string* x = std::get_if<std::string>(&a);
  const std::string* y = std::get_if<std::string>(&b);
  if (!x || !y) return 0;
  if (type == field_type::string || type == field_type::textarea) {
    const int c = lower(*x).compare(lower(*y));
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  const int c = x->compare(*y);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

bool like_match(std::string_view text, std::string_view pattern) {
  std::size_t t = 0, p = 0, star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == like_one || pattern[p] == text[t])) {
      ++t;
      ++p;
    } else if (p < pattern.size() && pattern[p] == like_any) {
      star_p = p++;
      star_t = t;
    } else if (star_p != std::string_view::npos) {
      p = star_p + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == like_any) ++p;
  return p == pattern.size();
}

std::int64_t day_of(const field_value& v) {
  const auto* s = std::get_if<std::string>(&v);
  if (!s || s->size() < 10) return 0;
  return epoch_ms(s->substr(0, 10) + "T00:00:00.000Z") / 86'400'000;
}

bool compare_one(const field_value& v, soql_condition::op op, const soql_literal& l, const field_def& f,
                 std::int64_t today) {
  using o = soql_condition::op;
  if (l.type == soql_literal::kind::null) return op == o::eq ? is_null(v) : !is_null(v);
  if (is_null(v)) return op == o::ne;
  if (l.type == soql_literal::kind::relative_date) {
    const std::int64_t day = day_of(v), first = today + l.first_day, end = today + l.end_day;
    switch (op) {
      case o::eq: return day >= first && day < end;
      case o::ne: return day < first || day >= end;
      case o::lt: return day < first;
      case o::le: return day < end;
      case o::gt: return day >= end;
      case o::ge: return day >= first;
    }
  }
  const int c = compare_values(v, l.value, f.type);
  switch (op) {
    case o::eq: return c == 0;
    case o::ne: return c != 0;
    case o::lt: return c < 0;
    case o::le: return c <= 0;
    case o::gt: return c > 0;
    case o::ge: return c >= 0;
  }
  return false;
}

bool evaluate(const soql_condition& c, const field_map& fields, std::int64_t today) {
  switch (c.type) {
    case soql_condition::kind::all_of:
      return std::all_of(c.children.begin(), c.children.end(), [&](const auto& x) { return evaluate(x, fields, today); });
    case soql_condition::kind::any_of:
      return std::any_of(c.children.begin(), c.children.end(), [&](const auto& x) { return evaluate(x, fields, today); });
    case soql_condition::kind::negation:
      return !evaluate(c.children.front(), fields, today);
    case soql_condition::kind::compare:
      return compare_one(value_of(fields, c.field->name), c.comparison, c.values.front(), *c.field, today);
    case soql_condition::kind::in:
    case soql_condition::kind::not_in: {
      const field_value& v = value_of(fields, c.field->name);
      const bool found = std::any_of(c.values.begin(), c.values.end(), [&](const soql_literal& l) {
        return compare_one(v, soql_condition::op::eq, l, *c.field, today);
      });
      if (c.type == soql_condition::kind::in) return found;
      return !is_null(v) && !found;
    }
    case soql_condition::kind::like: {
      const field_value& v = value_of(fields, c.field->name);
      const auto* s = std::get_if<std::string>(&v);
      return s && like_match(lower(*s), std::get<std::string>(c.values.front().value));
    }
  }
  return false;
}

void collect_fields(const soql_condition& c, std::vector<std::string>& out) {
  if (c.field && std::find(out.begin(), out.end(), c.field->name) == out.end()) out.push_back(c.field->name);
  for (const auto& child : c.children) collect_fields(child, out);
}

}  // namespace

std::vector<std::string> soql_query::where_fields() const {
  std::vector<std::string> out;
  if (where) collect_fields(*where, out);
  return out;
}

bool soql_query::matches(const field_map& fields, const std::string& now) const {
  if (!where) return true;
  return evaluate(*where, fields, epoch_ms(now) / 86'400'000);
}

std::optional<soql_query> parse_soql(std::string_view text, const schema& objects, api_error& error) {
  try {
    parser p(text, objects);
    return p.parse();
  } catch (const soql_failure& failure) {
    error = api_error{failure.code, error_message(text, failure.at, failure.text), {}};
    return std::nullopt;
  }
}

std::vector<const record*> run_soql(const soql_query& query, const record_store& store, bool include_deleted,
                                    const std::string& now) {
  std::vector<const record*> out;
  for (const auto& [id, r] : store.of(query.object->name)) {
    if (r.deleted && !include_deleted) continue;
    if (query.matches(r.fields, now)) out.push_back(&r);
  }
  if (!query.order.empty()) {
    std::stable_sort(out.begin(), out.end(), [&](const record* a, const record* b) {
      for (const auto& o : query.order) {
        const field_value& x = value_of(a->fields, o.field->name);
        const field_value& y = value_of(b->fields, o.field->name);
        if (is_null(x) || is_null(y)) {
          if (is_null(x) && is_null(y)) continue;
          return is_null(x) == o.nulls_first;
        }
        const int c = compare_values(x, y, o.field->type);
        if (c != 0) return o.descending ? c > 0 : c < 0;
      }
      return false;
    });
  }
  if (query.offset > 0) out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(std::min(query.offset, out.size())));
  if (query.limit && out.size() > *query.limit) out.resize(*query.limit);
  return out;
}

}  // namespace sfstream::emulator::data
