// Redaction of secrets from text that is about to be logged, put into diagnostics or printed.
// Pure string functions, usable from every layer. Not part of the stable public API.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace sfstream::detail {

/// What a redacted secret is replaced with.
inline constexpr std::string_view redaction_mark = "[REDACTED]";

/// The shortest registered secret that is searched for in free text (8: Salesforce's default
/// minimum password length; security tokens, session ids and OAuth tokens are far longer).
/// A shorter string occurs inside ordinary words too often: masking it there would mangle
/// server text ("Invalid username, [REDACTED]assword") and reveal which letters it holds. A
/// shorter secret is still masked where it stands as a value (redact_known_patterns).
inline constexpr std::size_t min_registered_secret_length = 8;

/// Masks each occurrence of each registered secret of at least min_registered_secret_length
/// characters that stands as a whole token: where the secret starts (ends) with a word
/// character (a letter, digit, '_' or a non-ASCII byte), the text before (after) it must not
/// be one. Overlapping occurrences are hidden whole. Shorter secrets are ignored here.
std::string redact_secrets(std::string_view text, std::span<const std::string> secrets);

/// Masks secrets where they stand as values, whoever owns them:
///  * the value of `Authorization:`, `Proxy-Authorization:`, `Cookie:`, `Set-Cookie:` and
///    `X-SFDC-Session:` header lines (to the end of the line);
///  * the content of `<sessionId>`, `<password>` and `<securityToken>` elements, with or without
///    a namespace prefix;
///  * JSON string members "access_token", "refresh_token", "client_secret", "id_token",
///    "password", "assertion", "client_assertion", "sessionId", "session_id", "security_token",
///    "securityToken", "sid" (also inside a quoted JSON string, as \"key\":\"value\");
///  * form, query and cookie fields password=, client_secret=, refresh_token=, access_token=,
///    assertion=, id_token=, client_assertion=, sid= (the key at the start, or after one of
///    `& ? ; ,` or white space; the value to the next `& ; " '` or white space);
///  * the password of URL user info, `scheme://user:password@host`;
///  * PEM private key blocks (-----BEGIN ... PRIVATE KEY----- to the matching END line);
///  * Salesforce session ids: the part after '!' of "<15 or 18 char org id>!<token>".
/// Nothing else changes: not the names, not the text around the values.
std::string redact_known_patterns(std::string_view text);

/// redact_secrets and redact_known_patterns together (both found in the original text): the
/// one to call before logging.
std::string redact(std::string_view text, std::span<const std::string> secrets = {});

}  // namespace sfstream::detail
