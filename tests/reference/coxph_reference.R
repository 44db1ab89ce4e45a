# Cox proportional hazards references for alsprog's Cox numerics (issue 25).
# Run from tests/reference:  Rscript coxph_reference.R > coxph_reference.Rout 2>&1
# Writes lung.csv and veteran.csv (survival's data sets, complete cases of the columns
# used) and coxph_reference.json (coefficients, naive SEs, log-likelihoods, the
# Breslow baseline cumulative hazard) for Efron and Breslow ties, and for a
# delayed-entry (left-truncated) fit.
suppressPackageStartupMessages({library(survival); library(jsonlite)})
cat("survival", as.character(packageVersion("survival")), "\n")
lung2 <- na.omit(survival::lung[, c("time", "status", "age", "sex", "ph.ecog", "ph.karno", "wt.loss")])
lung2$event <- as.integer(lung2$status == 2)
# a delayed entry: each patient enters at a third of their time, capped at 100 days
lung2$entry <- pmin(floor(lung2$time / 3), 100)
vet <- survival::veteran
vet$squamous <- as.integer(vet$celltype == "squamous")
vet$smallcell <- as.integer(vet$celltype == "smallcell")
vet$adeno <- as.integer(vet$celltype == "adeno")
write.csv(lung2[, c("time", "event", "entry", "age", "sex", "ph.ecog", "ph.karno", "wt.loss")],
          "lung.csv", row.names = FALSE)
write.csv(vet[, c("time", "status", "trt", "karno", "diagtime", "age", "prior",
                  "squamous", "smallcell", "adeno")], "veteran.csv", row.names = FALSE)
one <- function(fit) {
  bh <- basehaz(fit, centered = FALSE)
  list(coef = unname(coef(fit)), names = names(coef(fit)), se = unname(sqrt(diag(vcov(fit)))),
       loglik = unname(fit$loglik), n = fit$n, nevent = fit$nevent,
       concordance = unname(fit$concordance["concordance"]),
       basehaz_time = bh$time, basehaz = bh$hazard)
}
ctl <- coxph.control(eps = 1e-12, toler.chol = 1e-15, iter.max = 100)
out <- list(
  lung_efron = one(coxph(Surv(time, event) ~ age + sex + ph.ecog + ph.karno + wt.loss,
                         data = lung2, ties = "efron", control = ctl)),
  lung_breslow = one(coxph(Surv(time, event) ~ age + sex + ph.ecog + ph.karno + wt.loss,
                           data = lung2, ties = "breslow", control = ctl)),
  lung_entry_efron = one(coxph(Surv(entry, time, event) ~ age + sex + ph.ecog,
                               data = lung2, ties = "efron", control = ctl)),
  veteran_efron = one(coxph(Surv(time, status) ~ trt + karno + diagtime + age + prior +
                              squamous + smallcell + adeno, data = vet, ties = "efron",
                            control = ctl)),
  veteran_breslow = one(coxph(Surv(time, status) ~ trt + karno + diagtime + age + prior +
                                squamous + smallcell + adeno, data = vet,
                              ties = "breslow", control = ctl))
)
for (nm in names(out)) cat(nm, "loglik", format(out[[nm]]$loglik, digits = 15), "\n")
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "coxph_reference.json")
