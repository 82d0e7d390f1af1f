// make_certificates: a throwaway EC P-256 CA and a leaf signed by it, built with the OpenSSL 3
// EVP/X509 API at run time, so no key material is ever checked in.
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "emulator/net/http_server.hpp"

namespace sfstream::emulator::net {
namespace {

struct pkey_free {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const noexcept { BIO_free(p); }
};
struct ext_free {
  void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, ext_free>;

[[noreturn]] void fail(const char* what) {
  std::string text = std::string("make_certificates: ") + what;
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    text += ": ";
    text += buffer;
  }
  ERR_clear_error();
  throw std::runtime_error(text);
}

void check(int ok, const char* what) {
  if (ok <= 0) fail(what);
}

pkey_ptr make_key() {
  pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) fail("generating an EC P-256 key");
  return key;
}

void set_random_serial(X509* cert) {
  unsigned char bytes[16];
  check(RAND_bytes(bytes, sizeof bytes), "drawing a serial number");
  bytes[0] &= 0x7f;  // positive
  bytes[0] |= 0x01;  // non-zero, full length
  BIGNUM* bn = BN_bin2bn(bytes, sizeof bytes, nullptr);
  if (bn == nullptr) fail("making a serial number");
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  if (serial == nullptr) fail("setting a serial number");
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ext_ptr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (!ext) fail("making a certificate extension");
  check(X509_add_ext(cert, ext.get(), -1), "adding a certificate extension");
}

x509_ptr make_certificate(EVP_PKEY* key, const std::string& common_name, X509* issuer, int days) {
  x509_ptr cert(X509_new());
  if (!cert) fail("allocating a certificate");
  check(X509_set_version(cert.get(), 2), "setting the certificate version");
  set_random_serial(cert.get());
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr) fail("setting notBefore");
  if (X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) == nullptr)
    fail("setting notAfter");
  check(X509_set_pubkey(cert.get(), key), "setting the public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("sfstream test"), -1, -1,
                                   0),
        "setting the subject");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                   -1, 0),
        "setting the subject");
  X509* signer = issuer != nullptr ? issuer : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)), "setting the issuer");
  return cert;
}

std::string to_pem(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("allocating a BIO");
  check(PEM_write_bio_X509(bio.get(), cert), "writing a certificate");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string to_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("allocating a BIO");
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "writing a key");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

bool is_ip_address(const std::string& name) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

}  // namespace

certificate_set make_certificates(const std::vector<std::string>& names, int days) {
  if (names.empty()) throw std::invalid_argument("make_certificates: at least one name is needed");
  if (days <= 0) throw std::invalid_argument("make_certificates: days must be positive");

  pkey_ptr ca_key = make_key();
  x509_ptr ca = make_certificate(ca_key.get(), "sfstream test CA", nullptr, days);
  add_extension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
  add_extension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
  check(X509_sign(ca.get(), ca_key.get(), EVP_sha256()), "signing the CA certificate");

  pkey_ptr leaf_key = make_key();
  x509_ptr leaf = make_certificate(leaf_key.get(), names.front(), ca.get(), days);
  std::string san;
  for (const auto& name : names) {
    if (!san.empty()) san += ',';
    san += is_ip_address(name) ? "IP:" : "DNS:";
    san += name;
  }
  add_extension(leaf.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(leaf.get(), ca.get(), NID_key_usage, "critical,digitalSignature,keyEncipherment");
  add_extension(leaf.get(), ca.get(), NID_ext_key_usage, "serverAuth");
  add_extension(leaf.get(), ca.get(), NID_subject_alt_name, san);
  add_extension(leaf.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
  check(X509_sign(leaf.get(), ca_key.get(), EVP_sha256()), "signing the leaf certificate");

  certificate_set out;
  out.ca_certificate_pem = to_pem(ca.get());
  out.certificate_pem = to_pem(leaf.get());
  out.private_key_pem = to_pem(leaf_key.get());
  return out;
}

}  // namespace sfstream::emulator::net
