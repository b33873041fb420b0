import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { useI18n } from "./context.ts";
import { hasValidation, type LossSeries } from "./lib/events.ts";

/**
 * The live loss curve: training loss, and validation loss when the job measures it, per step. The
 * container is an image to assistive technology (role="img", "Loss curve") and carries its point count
 * in `data-points`, which grows while the job trains.
 */
export function LossChart({ series }: { series: LossSeries }) {
  const { t } = useI18n();
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const withValidation = hasValidation(series);
  const points = series.steps.length;

  // A new chart when the series set changes (validation appears) or the language does.
  useEffect(() => {
    const element = box.current;
    if (!element || points === 0) return;
    const styles = getComputedStyle(document.documentElement);
    const train = styles.getPropertyValue("--chart-train").trim() || "#1d4ed8";
    const valid = styles.getPropertyValue("--chart-valid").trim() || "#b45309";
    const axis = styles.getPropertyValue("--text").trim() || "#1f2933";
    const options: uPlot.Options = {
      width: Math.max(280, element.clientWidth),
      height: 280,
      scales: { x: { time: false } },
      axes: [
        { label: t("job.step"), stroke: axis },
        { label: t("job.loss"), stroke: axis },
      ],
      series: [
        { label: t("job.step") },
        { label: t("job.trainLoss"), stroke: train, width: 2, spanGaps: true, points: { show: points < 60 } },
        ...(withValidation
          ? [
              {
                label: t("job.validLoss"),
                stroke: valid,
                width: 2,
                dash: [6, 4],
                spanGaps: true,
                points: { show: true },
              },
            ]
          : []),
      ],
    };
    const chart = new uPlot(options, toData(series, withValidation), element);
    plot.current = chart;
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(280, element.clientWidth), height: 280 }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [withValidation, t, points === 0]);

  useEffect(() => {
    plot.current?.setData(toData(series, withValidation));
  }, [series, withValidation]);

  return (
    <figure class="chart">
      <div
        ref={box}
        class="chart-box"
        role="img"
        aria-label={t("job.lossCurve")}
        aria-describedby="loss-caption"
        data-points={points}
      />
      <figcaption id="loss-caption" class="muted">
        {points === 0 ? t("job.noMetrics") : `${t("job.points", { count: points })}. ${latest(series, t)}`}
      </figcaption>
    </figure>
  );
}

function toData(series: LossSeries, withValidation: boolean): uPlot.AlignedData {
  return withValidation ? [series.steps, series.train, series.valid] : [series.steps, series.train];
}

/** The last measured values, in words: what the picture shows, for those who cannot see it. */
function latest(series: LossSeries, t: ReturnType<typeof useI18n>["t"]): string {
  const last = <T,>(values: readonly (T | null)[]) => {
    for (let i = values.length - 1; i >= 0; i--)
      if (values[i] !== null) return { value: values[i]!, step: series.steps[i]! };
    return undefined;
  };
  const train = last(series.train);
  const valid = last(series.valid);
  return [
    train
      ? t("job.latest", { name: t("job.trainLoss"), value: train.value.toFixed(4), step: train.step })
      : "",
    valid
      ? t("job.latest", { name: t("job.validLoss"), value: valid.value.toFixed(4), step: valid.step })
      : "",
  ]
    .filter(Boolean)
    .join("; ");
}
