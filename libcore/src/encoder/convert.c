/*
 * convert.c - a sentence-transformers BERT folder (config.json, model.safetensors, vocab.txt,
 * sentence_bert_config.json, 1_Pooling/config.json) to one encoder .lpm file (encoder.h).
 *
 * Only the checkpoint's float tensors under "embeddings." and "encoder." are kept (converted
 * to F32; "encoder." dropped from the name); integer buffers such as position_ids and a
 * pooler head are skipped. The written file is loaded back once before success is reported,
 * so a file that converts is a file that loads.
 */
#include "lepton/encoder.h"
#include "lepton/registry.h"
#include "lepton/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static lp_status read_json(const char *dir, const char *rel, bool optional, cJSON **out,
                           lp_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    lp_status s = lp_file_read(path, &data, &len, err);
    if (s == LP_ENOTFOUND && optional) {
        lp_err_clear(err);
        return LP_OK;
    }
    if (s)
        return s;
    *out = cJSON_ParseWithLength((const char *)data, len);
    free(data);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return lp_err_set(err, LP_EPARSE, "%s: not a JSON object", path);
    }
    return LP_OK;
}

static lp_status json_int(const cJSON *o, const char *key, const char *file, double *v, lp_err *err)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x))
        return lp_err_set(err, LP_EFORMAT, "%s: field '%s' missing or not a number", file, key);
    *v = x->valuedouble;
    return LP_OK;
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* The header JSON of the encoder file from the model folder's configuration files. */
static lp_status make_header(const char *dir, const char *source, char **out, lp_err *err)
{
    cJSON *cfg = NULL, *sb = NULL, *pool = NULL, *h = NULL;
    lp_status s = read_json(dir, "config.json", false, &cfg, err);
    if (!s)
        s = read_json(dir, "sentence_bert_config.json", true, &sb, err);
    if (!s)
        s = read_json(dir, "1_Pooling/config.json", true, &pool, err);
    const char *mt = cfg ? json_str(cfg, "model_type") : NULL;
    const char *act = cfg ? json_str(cfg, "hidden_act") : NULL;
    const char *pe = cfg ? json_str(cfg, "position_embedding_type") : NULL;
    if (!s && (!mt || strcmp(mt, "bert") != 0))
        s = lp_err_set(err, LP_EUNSUPPORTED, "%s/config.json: model_type is '%s'; expected 'bert'",
                       dir, mt ? mt : "(missing)");
    if (!s && (!act || strcmp(act, "gelu") != 0))
        s = lp_err_set(err, LP_EUNSUPPORTED, "%s/config.json: hidden_act is '%s'; expected 'gelu'",
                       dir, act ? act : "(missing)");
    if (!s && pe && strcmp(pe, "absolute") != 0)
        s = lp_err_set(err, LP_EUNSUPPORTED,
                       "%s/config.json: position_embedding_type '%s'; expected 'absolute'", dir,
                       pe);
    if (!s && pool) {
        const char *modes[] = {"pooling_mode_cls_token", "pooling_mode_max_tokens",
                               "pooling_mode_mean_sqrt_len_tokens"};
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pool, "pooling_mode_mean_tokens")))
            s = lp_err_set(err, LP_EUNSUPPORTED,
                           "%s/1_Pooling/config.json: pooling_mode_mean_tokens is not true", dir);
        for (int i = 0; !s && i < 3; i++)
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pool, modes[i])))
                s = lp_err_set(err, LP_EUNSUPPORTED,
                               "%s/1_Pooling/config.json: %s is set; only mean pooling is "
                               "supported",
                               dir, modes[i]);
    }
    static const char *const keys[][2] = {
        {"vocab_size", "vocab_size"},          {"hidden_size", "hidden"},
        {"num_hidden_layers", "layers"},       {"num_attention_heads", "heads"},
        {"intermediate_size", "intermediate"}, {"max_position_embeddings", "max_position"},
        {"type_vocab_size", "type_vocab"},     {"layer_norm_eps", "ln_eps"},
    };
    h = cJSON_CreateObject();
    if (!s && !h)
        s = lp_err_set(err, LP_ENOMEM, "encoder header: out of memory");
    if (!s) {
        cJSON_AddStringToObject(h, "kind", "encoder");
        cJSON_AddStringToObject(h, "arch", "bert");
    }
    double v = 0, max_pos = 0;
    for (size_t i = 0; !s && i < sizeof keys / sizeof keys[0]; i++) {
        s = json_int(cfg, keys[i][0], "config.json", &v, err);
        if (!s)
            cJSON_AddNumberToObject(h, keys[i][1], v);
        if (!s && strcmp(keys[i][1], "max_position") == 0)
            max_pos = v;
    }
    double max_len = max_pos < 512 ? max_pos : 512;
    if (!s && sb)
        s = json_int(sb, "max_seq_length", "sentence_bert_config.json", &max_len, err);
    if (!s) {
        if (max_len > max_pos)
            max_len = max_pos;
        cJSON_AddNumberToObject(h, "max_len", max_len);
        cJSON_AddBoolToObject(h, "lower_case", true);
        cJSON_AddStringToObject(h, "pooling", "mean");
        cJSON_AddBoolToObject(h, "normalize", true);
        cJSON_AddStringToObject(h, "source", source ? source : dir);
        cJSON_AddStringToObject(h, "tensor_names", "checkpoint names less a leading 'encoder.'");
        if (!(*out = cJSON_PrintUnformatted(h)))
            s = lp_err_set(err, LP_ENOMEM, "encoder header: out of memory");
    }
    cJSON_Delete(cfg);
    cJSON_Delete(sb);
    cJSON_Delete(pool);
    cJSON_Delete(h);
    return s;
}

static lp_status add_tensors(lp_lpm_writer *w, const char *dir, lp_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lp_safetensors *st = NULL;
    lp_status s = lp_safetensors_load(path, &st, err);
    float *buf = NULL;
    size_t kept = 0;
    for (size_t i = 0; !s && i < lp_safetensors_count(st); i++) {
        const lp_st_tensor *t = lp_safetensors_at(st, i);
        const char *name = t->name;
        if (strncmp(name, "bert.", 5) == 0)
            name += 5;
        bool emb = strncmp(name, "embeddings.", 11) == 0;
        if (!emb && strncmp(name, "encoder.", 8) != 0)
            continue;
        if (t->dtype != LP_ST_DTYPE_F32 && t->dtype != LP_ST_DTYPE_F16 &&
            t->dtype != LP_ST_DTYPE_BF16 && t->dtype != LP_ST_DTYPE_F64)
            continue; /* integer buffers (position_ids) */
        float *nb = lp_reallocarray(buf, t->numel ? t->numel : 1, sizeof *buf);
        if (!nb) {
            s = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
            break;
        }
        buf = nb;
        s = lp_safetensors_to_f32(t, buf, err);
        if (!s)
            s = lp_lpm_writer_add(w, emb ? name : name + 8, LP_LPM_DTYPE_F32, buf,
                                  t->numel * sizeof *buf, err);
        if (s)
            lp_err_prefix(err, "%s", path);
        kept++;
    }
    if (!s && kept == 0)
        s = lp_err_set(err, LP_ENOTFOUND, "%s: no embeddings.* or encoder.* float tensors", path);
    free(buf);
    lp_safetensors_free(st);
    return s;
}

lp_status lp_encoder_convert(const char *model_dir, const char *out_path, const char *source,
                             lp_err *err)
{
    if (!model_dir || !out_path)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_convert: NULL argument");
    char *header = NULL, path[4096];
    lp_lpm_writer *w = lp_lpm_writer_new();
    lp_status s = w ? LP_OK : lp_err_set(err, LP_ENOMEM, "encoder writer: out of memory");
    if (!s)
        s = make_header(model_dir, source, &header, err);
    if (!s)
        s = add_tensors(w, model_dir, err);
    if (!s) {
        uint8_t *vocab = NULL;
        size_t n = 0;
        snprintf(path, sizeof path, "%s/vocab.txt", model_dir);
        s = lp_file_read(path, &vocab, &n, err);
        if (!s)
            s = lp_lpm_writer_add(w, "vocab", LP_LPM_DTYPE_BYTES, vocab, n, err);
        free(vocab);
    }
    if (!s)
        s = lp_lpm_writer_save(w, header, out_path, err);
    lp_lpm_writer_free(w);
    free(header);
    if (s)
        return s;
    lp_encoder *e = NULL;
    s = lp_encoder_load(out_path, "cpu", &e, err);
    lp_encoder_free(e);
    if (s)
        lp_err_prefix(err, "converted file does not load");
    return s;
}
