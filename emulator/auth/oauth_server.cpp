#include "emulator/auth/oauth_server.hpp"

#include <cctype>
#include <chrono>
#include <memory>
#include <vector>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "emulator/auth/soap_login_server.hpp"

namespace sfstream::emulator::auth {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= text.size()) {
        return std::nullopt;
      }
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) {
        return std::nullopt;
      }
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

transport::http_response json_response(unsigned status, std::string body) {
  transport::http_response r;
  r.status = status;
  r.reason = status == 200 ? "OK" : (status == 400 ? "Bad Request" : "Error");
  r.headers = {{"Content-Type", "application/json;charset=UTF-8"}, {"Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private"}};
  r.body = std::move(body);
  return r;
}

transport::http_response oauth_error(unsigned status, std::string_view error, std::string_view description) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("error");
  w.String(error.data(), static_cast<rapidjson::SizeType>(error.size()));
  w.Key("error_description");
  w.String(description.data(), static_cast<rapidjson::SizeType>(description.size()));
  w.EndObject();
  return json_response(status, sb.GetString());
}

std::optional<std::string> base64url_decode(std::string_view text) {
  std::string b64(text);
  for (char& c : b64) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=')) return std::nullopt;
  }
  while (b64.size() % 4 != 0) {
    b64 += '=';
  }
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0) {
    return std::nullopt;
  }
  std::size_t padding = 0;
  for (auto it = b64.rbegin(); it != b64.rend() && *it == '='; ++it) ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

struct pkey_deleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

pkey_ptr load_public_key(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return nullptr;
  if (EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)) {
    return pkey_ptr(key);
  }
  BIO_reset(bio.get());
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return nullptr;
  return pkey_ptr(X509_get_pubkey(cert.get()));
}

bool verify_rs256(const std::string& pem, std::string_view signed_part, const std::string& signature) {
  pkey_ptr key = load_public_key(pem);
  if (!key) return false;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

const oauth_client* find_client(const emulator_options& options, const std::string& id) {
  for (const auto& c : options.oauth_clients) {
    if (c.client_id == id) return &c;
  }
  return nullptr;
}

const emulator_user* find_user(const emulator_options& options, const std::string& username) {
  for (const auto& u : options.users) {
    if (u.username == username) return &u;
  }
  return nullptr;
}

std::string get(const std::map<std::string, std::string>& form, const std::string& key) {
  auto it = form.find(key);
  return it == form.end() ? std::string{} : it->second;
}

}  // namespace

std::string oauth_login_username(const std::string& body) {
  auto form = parse_form(body);
  if (!form) return {};
  const std::string grant = get(*form, "grant_type");
  if (grant == "password") return get(*form, "username");
  if (grant != "urn:ietf:params:oauth:grant-type:jwt-bearer") return {};
  const std::string assertion = get(*form, "assertion");
  const auto dot1 = assertion.find('.');
  const auto dot2 = dot1 == std::string::npos ? std::string::npos : assertion.find('.', dot1 + 1);
  if (dot2 == std::string::npos) return {};
  auto claims = base64url_decode(std::string_view(assertion).substr(dot1 + 1, dot2 - dot1 - 1));
  rapidjson::Document c;
  if (!claims || c.Parse(claims->c_str()).HasParseError() || !c.IsObject()) return {};
  auto sub = c.FindMember("sub");
  return sub != c.MemberEnd() && sub->value.IsString() ? sub->value.GetString() : "";
}

std::optional<std::map<std::string, std::string>> parse_form(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    auto amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    out.try_emplace(std::move(*key), std::move(*value));
  }
  return out;
}

oauth_server::oauth_server(const emulator_options& options, const clock& clk, session_registry& sessions)
    : options_(options), clock_(clk), sessions_(sessions) {}

transport::http_response oauth_server::handle(const transport::http_request& request, const std::string& base_url,
                                              const std::string& audience) {
  if (request.method != "POST") {
    return oauth_error(400, "invalid_request", "must use HTTP POST");
  }
  auto form = parse_form(request.body);
  if (!form) {
    return oauth_error(400, "invalid_request", "malformed request body");
  }
  const std::string grant = get(*form, "grant_type");
  const emulator_user* user = nullptr;
  const oauth_client* client = nullptr;
  bool issue_refresh = false;

  if (grant == "password") {
    client = find_client(options_, get(*form, "client_id"));
    if (client == nullptr) return oauth_error(400, "invalid_client_id", "client identifier invalid");
    if (get(*form, "client_secret") != client->client_secret) return oauth_error(400, "invalid_client", "invalid client credentials");
    user = check_password(options_.users, get(*form, "username"), get(*form, "password"));
    if (user == nullptr) return oauth_error(400, "invalid_grant", "authentication failure");
    issue_refresh = true;
  } else if (grant == "refresh_token") {
    client = find_client(options_, get(*form, "client_id"));
    if (client == nullptr) return oauth_error(400, "invalid_client_id", "client identifier invalid");
    if (form->count("client_secret") != 0 && get(*form, "client_secret") != client->client_secret) {
      return oauth_error(400, "invalid_client", "invalid client credentials");
    }
    auto name = sessions_.refresh_token_user(get(*form, "refresh_token"));
    user = name ? find_user(options_, *name) : nullptr;
    if (user == nullptr) return oauth_error(400, "invalid_grant", "expired access/refresh token");
  } else if (grant == "client_credentials") {
    client = find_client(options_, get(*form, "client_id"));
    if (client == nullptr) return oauth_error(400, "invalid_client_id", "client identifier invalid");
    if (get(*form, "client_secret") != client->client_secret) return oauth_error(400, "invalid_client", "invalid client credentials");
    if (options_.users.empty()) return oauth_error(400, "invalid_grant", "no client credentials user enabled");
    user = &options_.users.front();  // the connected app's run-as user
  } else if (grant == "urn:ietf:params:oauth:grant-type:jwt-bearer") {
    const std::string assertion = get(*form, "assertion");
    auto dot1 = assertion.find('.');
    auto dot2 = dot1 == std::string::npos ? std::string::npos : assertion.find('.', dot1 + 1);
    if (dot2 == std::string::npos || assertion.find('.', dot2 + 1) != std::string::npos) {
      return oauth_error(400, "invalid_grant", "invalid assertion");
    }
    auto header = base64url_decode(std::string_view(assertion).substr(0, dot1));
    auto claims = base64url_decode(std::string_view(assertion).substr(dot1 + 1, dot2 - dot1 - 1));
    auto signature = base64url_decode(std::string_view(assertion).substr(dot2 + 1));
    rapidjson::Document h, c;
    if (!header || !claims || !signature || h.Parse(header->c_str()).HasParseError() || !h.IsObject() ||
        c.Parse(claims->c_str()).HasParseError() || !c.IsObject()) {
      return oauth_error(400, "invalid_grant", "invalid assertion");
    }
    if (!h.HasMember("alg") || !h["alg"].IsString() || std::string_view(h["alg"].GetString()) != "RS256") {
      return oauth_error(400, "invalid_grant", "invalid assertion");
    }
    auto claim = [&](const char* name) -> std::string {
      auto it = c.FindMember(name);
      if (it == c.MemberEnd()) return {};
      if (it->value.IsString()) return it->value.GetString();
      if (it->value.IsArray() && it->value.Size() == 1 && it->value[0].IsString()) return it->value[0].GetString();
      return {};
    };
    client = find_client(options_, claim("iss"));
    if (client == nullptr || client->jwt_public_key_pem.empty()) {
      return oauth_error(400, "invalid_client_id", "client identifier invalid");
    }
    if (!verify_rs256(client->jwt_public_key_pem, std::string_view(assertion).substr(0, dot2), *signature)) {
      return oauth_error(400, "invalid_grant", "invalid assertion");
    }
    std::string aud = claim("aud");
    while (!aud.empty() && aud.back() == '/') aud.pop_back();
    if (aud != (audience.empty() ? base_url : audience)) {
      return oauth_error(400, "invalid_grant", "audience is invalid");
    }
    auto exp = c.FindMember("exp");
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(clock_.now().time_since_epoch()).count();
    if (exp == c.MemberEnd() || !exp->value.IsNumber() || exp->value.GetDouble() <= static_cast<double>(now_s)) {
      return oauth_error(400, "invalid_grant", "expired authorization code");
    }
    user = find_user(options_, claim("sub"));
    if (user == nullptr) return oauth_error(400, "invalid_grant", "user hasn't approved this consumer");
  } else if (grant.empty()) {
    return oauth_error(400, "unsupported_grant_type", "grant type not supported");
  } else {
    return oauth_error(400, "unsupported_grant_type", "grant type not supported");
  }

  const std::string access_token = sessions_.create_session(user->username);
  const std::string identity = base_url + "/id/" + options_.org_id + "/" + user->user_id;
  const std::string issued_at = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.now().time_since_epoch()).count());
  // Salesforce signs id + issued_at with the consumer secret (HMAC-SHA256, base64).
  const std::string to_sign = identity + issued_at;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  HMAC(EVP_sha256(), client->client_secret.data(), static_cast<int>(client->client_secret.size()),
       reinterpret_cast<const unsigned char*>(to_sign.data()), to_sign.size(), mac, &mac_size);

  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("access_token");
  w.String(access_token);
  if (issue_refresh) {
    w.Key("refresh_token");
    w.String(sessions_.create_refresh_token(user->username));
  }
  w.Key("instance_url");
  w.String(base_url);
  w.Key("id");
  w.String(identity);
  w.Key("token_type");
  w.String("Bearer");
  w.Key("issued_at");
  w.String(issued_at);
  w.Key("signature");
  w.String(base64(mac, mac_size));
  w.EndObject();
  auto reply = json_response(200, sb.GetString());
  reply.headers.emplace_back("Set-Cookie", browser_id_cookie());
  return reply;
}

}  // namespace sfstream::emulator::auth
