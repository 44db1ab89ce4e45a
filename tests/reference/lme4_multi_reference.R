# Reference values for tests/models/test_lmm_multi.py: lme4 fits with several grouping
# factors (crossed, nested, interaction), run offline (R is never a test dependency):
#   cd tests/reference && Rscript lme4_multi_reference.R > lme4_multi_reference.Rout 2>&1
# Writes Pastes.csv, Penicillin.csv, cake.csv (lme4's data sets) and
# lme4_multi_reference.json.  site_sim.csv comes from make_site_sim.py.
suppressMessages({library(lme4); library(lmerTest); library(emmeans); library(jsonlite)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " lme4", as.character(packageVersion("lme4")),
    " lmerTest", as.character(packageVersion("lmerTest")),
    " pbkrtest", as.character(packageVersion("pbkrtest")), "\n")

write.csv(Pastes, "Pastes.csv", row.names = FALSE)
write.csv(Penicillin, "Penicillin.csv", row.names = FALSE)
cake2 <- cake[, c("replicate", "recipe", "temp", "angle")]
write.csv(cake2, "cake.csv", row.names = FALSE)
pastes <- read.csv("Pastes.csv", stringsAsFactors = TRUE)
penicillin <- read.csv("Penicillin.csv", stringsAsFactors = TRUE)
cake3 <- read.csv("cake.csv", stringsAsFactors = TRUE)
cake3$replicate <- factor(cake3$replicate)
site <- read.csv("site_sim.csv", stringsAsFactors = TRUE)

ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12, maxfun = 1e5))

one <- function(name, formula, data, REML = TRUE, ddf = TRUE) {
  m <- lmer(formula, data, REML = REML, control = ctrl)
  re <- ranef(m)
  out <- list(
    formula = paste(deparse(formula), collapse = ""), REML = REML,
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = as.list(getME(m, "theta")),
    sigma = sigma(m),
    varcorr = as.data.frame(VarCorr(m)),
    criterion = if (REML) REMLcrit(m) else deviance(m),
    logLik = as.numeric(logLik(m)),
    nobs = nobs(m), ngrps = as.list(ngrps(m)),
    singular = isSingular(m),
    ranef = lapply(re, function(r) list(levels = rownames(r), names = colnames(r),
                                         values = unname(as.matrix(r)))),
    fitted_head = unname(head(fitted(m), 12))
  )
  if (ddf) {
    p <- length(fixef(m))
    s <- contest(m, diag(p), ddf = "Satterthwaite", joint = FALSE)
    out$satterthwaite <- list(df = s$df, t = s[["t value"]], p = s[["Pr(>|t|)"]])
    if (p > 1) {
      a <- anova(m, type = 3)
      out$anova <- list(terms = rownames(a), F = a[["F value"]], num_df = a$NumDF,
                        den_df = a$DenDF, p = a[["Pr(>F)"]])
    }
    if (REML) {
      k <- contest(m, diag(p), ddf = "Kenward-Roger", joint = FALSE)
      out$kenward_roger <- list(df = k$df, se = k[["Std. Error"]],
                                t = k[["t value"]], p = k[["Pr(>|t|)"]])
    }
  }
  cat("\n==", name, "\n"); print(summary(m))
  out
}

ref <- list(
  pastes_reml = one("pastes_reml", strength ~ 1 + (1 | batch/cask), pastes),
  pastes_ml = one("pastes_ml", strength ~ 1 + (1 | batch/cask), pastes, REML = FALSE),
  penicillin_reml = one("penicillin_reml", diameter ~ 1 + (1 | plate) + (1 | sample), penicillin),
  penicillin_ml = one("penicillin_ml", diameter ~ 1 + (1 | plate) + (1 | sample), penicillin,
                      REML = FALSE),
  cake_interaction = one("cake_interaction", angle ~ recipe * temp + (1 | recipe:replicate), cake3),
  cake_crossed = one("cake_crossed", angle ~ recipe + temp + (1 | replicate) + (1 | recipe:replicate),
                     cake3),
  site_reml = one("site_reml", alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id), site),
  site_ml = one("site_ml", alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id), site,
                REML = FALSE),
  site_nested = one("site_nested", alsfrs_r_total ~ months * arm + (1 | site/subject_id), site),
  site_uncorrelated = one("site_uncorrelated",
                          alsfrs_r_total ~ months + arm + (months || subject_id) + (1 | site), site)
)
# LS means of each arm at month 12 and their contrast (emmeans, Satterthwaite and KR df)
m <- lmer(alsfrs_r_total ~ months * arm + (1 | site) + (months | subject_id), site,
          control = ctrl)
for (ddf in c("satterthwaite", "kenward-roger")) {
  em <- emmeans(m, ~ arm, at = list(months = 12), lmer.df = ddf)
  es <- summary(em); ct <- summary(pairs(em))
  ref[[paste0("site_lsmeans_", gsub("-", "_", ddf))]] <- list(
    arm = as.character(es$arm), estimate = es$emmean, se = es$SE, df = es$df,
    contrast = as.character(ct$contrast), contrast_estimate = ct$estimate,
    contrast_se = ct$SE, contrast_df = ct$df, contrast_t = ct$t.ratio,
    contrast_p = ct$p.value)
}
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE), "lme4_multi_reference.json")
