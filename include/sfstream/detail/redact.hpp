// Redaction of secrets from text that is about to be logged, put into diagnostics or printed.
// Pure string functions, usable from every layer. Not part of the stable public API.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sfstream::detail {

/// What a redacted secret is replaced with.
inline constexpr std::string_view redaction_mark = "[REDACTED]";

/// Replaces every occurrence of every non-empty string in `secrets` with redaction_mark.
/// Longer secrets are replaced first, so a secret that contains another is hidden whole.
std::string redact_secrets(std::string_view text, std::span<const std::string> secrets);

/// Masks secrets recognisable by their shape, whoever owns them:
///  * the value of `Authorization:`, `Proxy-Authorization:`, `Cookie:` and `Set-Cookie:`
///    header lines (to the end of the line);
///  * the content of `<sessionId>` and `<password>` elements, with or without a prefix;
///  * JSON string members "access_token", "refresh_token", "client_secret", "id_token",
///    "password", "assertion";
///  * form fields password=, client_secret=, refresh_token=, access_token=, assertion=;
///  * PEM private key blocks (-----BEGIN ... PRIVATE KEY----- to the matching END line);
///  * Salesforce session ids: the part after '!' of "<15 or 18 char org id>!<token>".
std::string redact_known_patterns(std::string_view text);

/// redact_secrets followed by redact_known_patterns: the one to call before logging.
std::string redact(std::string_view text, std::span<const std::string> secrets = {});

}  // namespace sfstream::detail
