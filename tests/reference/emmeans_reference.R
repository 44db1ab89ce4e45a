# Reference LS means and contrasts for tests/models/test_lmm_lsmeans.py, run offline
# (R is never a test dependency):
#   cd tests/reference && Rscript emmeans_reference.R > emmeans_reference.Rout 2>&1
# Reads sleepstudy.csv and als_sim.csv; writes emmeans_reference.json.
suppressMessages({library(lmerTest); library(emmeans); library(jsonlite)})
options(digits = 12)
cat("R", R.version$major, R.version$minor, " lme4", as.character(packageVersion("lme4")),
    " lmerTest", as.character(packageVersion("lmerTest")),
    " emmeans", as.character(packageVersion("emmeans")), "\n")
ctrl <- lmerControl(optimizer = "bobyqa",
                    optCtrl = list(rhobeg = 2e-3, rhoend = 1e-12, maxfun = 1e5))
sleep <- read.csv("sleepstudy.csv")
als <- read.csv("als_sim.csv", stringsAsFactors = TRUE)
emm_list <- function(e) {
  s <- as.data.frame(summary(e, infer = c(TRUE, TRUE)))
  print(s)
  as.list(s)
}
res <- list()
m <- lmer(alsfrs_r_total ~ months * onset_site + age_at_onset + (months | subject_id),
          als, control = ctrl)
e12 <- emmeans(m, ~ onset_site, at = list(months = 12), lmer.df = "satterthwaite")
res$als_site_m12 <- emm_list(e12)
res$als_site_m12_pairs <- emm_list(pairs(e12, adjust = "none"))
res$als_site_m12_tukey <- emm_list(pairs(e12, adjust = "tukey"))
res$als_site_m12_bonf <- emm_list(pairs(e12, adjust = "bonferroni"))
# emmeans' default for lmer: Kenward-Roger (pbkrtest)
ekr <- emmeans(m, ~ onset_site, at = list(months = 12), lmer.df = "kenward-roger")
res$als_site_m12_kr <- emm_list(ekr)
res$als_site_m12_kr_pairs <- emm_list(pairs(ekr, adjust = "none"))
emean <- emmeans(m, ~ onset_site, lmer.df = "satterthwaite")  # months, age at means
res$als_site_mean <- emm_list(emean)
egrid <- emmeans(m, ~ onset_site * months, at = list(months = c(0, 6, 12)),
                 lmer.df = "satterthwaite")
res$als_site_by_month <- emm_list(egrid)
ms <- lmer(Reaction ~ Days + (Days | Subject), sleep, control = ctrl)
res$sleep_days <- emm_list(emmeans(ms, ~ Days, at = list(Days = c(0, 9)),
                                   lmer.df = "satterthwaite"))
res$als_levels <- levels(als$onset_site)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "emmeans_reference.json")
