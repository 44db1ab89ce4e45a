# Reference values of Satterthwaite inference for tests/models/test_lmm_ddf.py, run
# offline (R is never a test dependency):
#   cd tests/reference && Rscript lmertest_reference.R > lmertest_reference.Rout 2>&1
# Reads sleepstudy.csv and als_sim.csv (written by lme4_reference.R / make_als_sim.py);
# writes lmertest_reference.json.
suppressMessages({library(lmerTest); library(jsonlite)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " lme4", as.character(packageVersion("lme4")),
    " lmerTest", as.character(packageVersion("lmerTest")), "\n")

sleep <- read.csv("sleepstudy.csv")
als <- read.csv("als_sim.csv", stringsAsFactors = TRUE)
ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12, maxfun = 1e5))

one <- function(name, formula, data, REML = TRUE, L = NULL, LJ = NULL) {
  m <- lmerTest::lmer(formula, data, REML = REML, control = ctrl)
  co <- coef(summary(m, ddf = "Satterthwaite"))
  out <- list(
    formula = deparse(formula), REML = REML,
    terms = rownames(co),
    estimate = unname(co[, "Estimate"]), se = unname(co[, "Std. Error"]),
    df = unname(co[, "df"]), t = unname(co[, "t value"]),
    p = unname(co[, "Pr(>|t|)"])
  )
  if (!is.null(L)) {
    ct <- contest(m, L, joint = FALSE, ddf = "Satterthwaite")
    out$contrast_L <- L
    out$contrast <- list(estimate = ct$Estimate, se = ct[["Std. Error"]], df = ct$df,
                         t = ct[["t value"]], p = ct[["Pr(>|t|)"]])
  }
  if (REML) {
    kr <- coef(summary(m, ddf = "Kenward-Roger"))
    out$kr <- list(se = unname(kr[, "Std. Error"]), df = unname(kr[, "df"]),
                   t = unname(kr[, "t value"]), p = unname(kr[, "Pr(>|t|)"]))
    print(kr)
  }
  if (!is.null(LJ) && REML) {
    ck <- contest(m, LJ, joint = TRUE, ddf = "Kenward-Roger")
    out$joint_kr <- list(F = ck[["F value"]], numdf = ck$NumDF, dendf = ck$DenDF,
                         p = ck[["Pr(>F)"]])
    print(ck)
  }
  if (!is.null(LJ)) {
    cj <- contest(m, LJ, joint = TRUE, ddf = "Satterthwaite")
    out$joint_L <- LJ
    out$joint <- list(F = cj[["F value"]], numdf = cj$NumDF, dendf = cj$DenDF,
                      p = cj[["Pr(>F)"]])
    print(cj)
  }
  cat("\n==== ", name, "\n"); print(co); if (!is.null(L)) print(ct)
  out
}

res <- list(
  sleep_reml = one("sleep_reml", Reaction ~ Days + (Days | Subject), sleep,
                   L = c(1, 10), LJ = diag(2)),
  sleep_ml = one("sleep_ml", Reaction ~ Days + (Days | Subject), sleep, REML = FALSE),
  sleep_int = one("sleep_int", Reaction ~ Days + (1 | Subject), sleep),
  sleep_uncorr = one("sleep_uncorr", Reaction ~ Days + (1 | Subject) + (0 + Days | Subject),
                     sleep),
  als_reml = one("als_reml", alsfrs_r_total ~ months * onset_site + age_at_onset +
                   (months | subject_id), als, L = c(0, 1, 0, 0, 0, 0, 1),
                 LJ = rbind(c(0, 0, 1, 0, 0, 0, 0), c(0, 0, 0, 1, 0, 0, 0),
                            c(0, 0, 0, 0, 0, 1, 0), c(0, 0, 0, 0, 0, 0, 1))),
  als_ml = one("als_ml", alsfrs_r_total ~ months * onset_site + age_at_onset +
                 (months | subject_id), als, REML = FALSE)
)
# type III ANOVA tables (lmerTest's anova(m), Satterthwaite and Kenward-Roger)
aov3 <- function(formula, data) {
  m <- eval(bquote(lmerTest::lmer(.(formula), data, control = ctrl)))
  out <- list()
  for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    a <- anova(m, type = 3, ddf = ddf)
    print(a)
    out[[ddf]] <- list(terms = rownames(a), sum_sq = unname(a[["Sum Sq"]]),
                       mean_sq = unname(a[["Mean Sq"]]), numdf = unname(a$NumDF),
                       dendf = unname(a$DenDF), F = unname(a[["F value"]]),
                       p = unname(a[["Pr(>F)"]]))
  }
  out
}
als2 <- transform(als, early = factor(ifelse(age_at_onset < 55, "young", "old")))
res$aov_als <- aov3(alsfrs_r_total ~ months * onset_site + age_at_onset +
                      (months | subject_id), als)
res$aov_als2 <- aov3(alsfrs_r_total ~ months * onset_site * early + (months | subject_id),
                     als2)
res$aov_sleep <- aov3(Reaction ~ Days + (Days | Subject), sleep)

# likelihood-ratio tests between nested models, as lme4's anova() (refit by ML)
lrt <- function(small, big, data) {
  m0 <- lme4::lmer(small, data, control = ctrl)
  m1 <- lme4::lmer(big, data, control = ctrl)
  a <- anova(m0, m1)
  print(a)
  list(npar = unname(a$npar), AIC = unname(a$AIC), BIC = unname(a$BIC),
       logLik = unname(a$logLik), deviance = unname(a$deviance),
       Chisq = unname(a$Chisq), Df = unname(a$Df), p = unname(a[["Pr(>Chisq)"]]))
}
res$lrt_sleep <- lrt(Reaction ~ 1 + (Days | Subject), Reaction ~ Days + (Days | Subject),
                     sleep)
res$lrt_als <- lrt(alsfrs_r_total ~ months + age_at_onset + (months | subject_id),
                   alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id),
                   als)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "lmertest_reference.json")
