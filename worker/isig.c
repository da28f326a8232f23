/* isig: HMAC signatures of internal requests. See isig.h. */
#include "worker/isig.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    const EVP_MD *(*md)(void);
} algs[] = {
    {"HmacSHA1", EVP_sha1},     {"HmacSHA224", EVP_sha224}, {"HmacSHA256", EVP_sha256},
    {"HmacSHA384", EVP_sha384}, {"HmacSHA512", EVP_sha512},
};

static const EVP_MD *md_of(const char *alg)
{
    for (size_t i = 0; alg && i < sizeof algs / sizeof algs[0]; i++)
        if (!strcmp(alg, algs[i].name))
            return algs[i].md();
    return NULL;
}

int isig_algorithm_ok(const char *alg)
{
    return md_of(alg) != NULL;
}

int isig_default_key_bits(const char *alg)
{
    const EVP_MD *md = md_of(alg);
    return md ? EVP_MD_get_size(md) * 8 : 0;
}

int isig_new_key(unsigned char *key, size_t bytes)
{
    return bytes > 0 && bytes <= ISIG_KEY_MAX && RAND_bytes(key, (int)bytes) == 1 ? 0 : -1;
}

static int mac(const char *alg, const unsigned char *key, size_t keylen, const void *body, size_t len,
               unsigned char *out, unsigned int *outlen)
{
    const EVP_MD *md = md_of(alg);
    return md && HMAC(md, key, (int)keylen, body, len, out, outlen) ? 0 : -1;
}

char *isig_sign(const char *alg, const unsigned char *key, size_t keylen, const void *body, size_t len)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n;
    return mac(alg, key, keylen, body ? body : "", len, out, &n) ? NULL : isig_b64_encode(out, n);
}

int isig_verify(const char *alg, const unsigned char *key, size_t keylen, const void *body, size_t len,
                const char *sig_b64, size_t siglen)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE + 3];
    unsigned int n;
    if (mac(alg, key, keylen, body ? body : "", len, want, &n))
        return -1;
    int gl = isig_b64_decode(sig_b64, siglen, got, sizeof got);
    if (gl < 0)
        return -1;
    return (unsigned)gl == n && CRYPTO_memcmp(want, got, n) == 0;
}

char *isig_b64_encode(const unsigned char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        abort();
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int isig_b64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 || len / 4 * 3 > cap)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int pad_ok = c == '=' && i >= len - 2 && (i == len - 1 || s[len - 1] == '=');
        if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '+' &&
            c != '/' && !pad_ok)
            return -1;
    }
    int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    n -= (s[len - 1] == '=') + (s[len - 2] == '=');
    return n;
}
