package main

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The plots' frame, in SVG user units.
const (
	plotWidth, plotHeight                = 720, 400
	marginLeft, marginRight              = 70, 150
	marginTop, marginBottom              = 50, 50
	innerWidth                           = plotWidth - marginLeft - marginRight
	innerHeight                          = plotHeight - marginTop - marginBottom
	axisTicks                            = 5
	fontStyle                            = `font-family="sans-serif" font-size="12"`
	barFill, whiskerStroke, gridStroke   = 0.8, "#222", "#ddd"
	titleSize, legendRow, legendSwatchSz = 15, 18, 12
)

// palette colours the variants; others are grey.
var palette = map[string]string{baseline: "#4c72b0", "thin": "#dd8452", "thick": "#55a868"}

func colour(variant string, i int) string {
	if c, ok := palette[variant]; ok {
		return c
	}
	greys := []string{"#8c8c8c", "#b0b0b0", "#606060"}
	return greys[i%len(greys)]
}

// addDelSVG draws grouped bars: for each network count, one bar per variant at
// the median ADD+DEL wall time, with a whisker from the minimum to the maximum.
// It returns "" when the bench has no wall_ms series.
func addDelSVG(t *benchTable) string {
	const metric = "wall_ms"
	var cases, vars []string
	top := 0.0
	for _, c := range t.Cases {
		vs := t.Variants[key{Case: c, Metric: metric}]
		if len(vs) == 0 {
			continue
		}
		cases = append(cases, c)
		for _, v := range vs {
			if !slices.Contains(vars, v) {
				vars = append(vars, v)
			}
			top = max(top, summarize(t.Samples[key{c, metric, v}]).Max)
		}
	}
	if len(cases) == 0 {
		return ""
	}
	slices.SortStableFunc(vars, compareVariants)
	var b strings.Builder
	step, yMax := axis(top)
	header(&b, "ADD+DEL of one pod: wall time (bar: median; whisker: min to max)")
	yAxis(&b, step, yMax, "ms")
	groupWidth := float64(innerWidth) / float64(len(cases))
	barWidth := groupWidth * barFill / float64(len(vars))
	for gi, c := range cases {
		x0 := marginLeft + float64(gi)*groupWidth + groupWidth*(1-barFill)/2
		for vi, v := range vars {
			xs := t.Samples[key{c, metric, v}]
			if len(xs) == 0 {
				continue // a variant missing from this case leaves a gap
			}
			s := summarize(xs)
			x := x0 + float64(vi)*barWidth
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: median %.1f ms (%d samples)</title></rect>`+"\n",
				x, yPos(s.Median, yMax), barWidth*0.9, yPos(0, yMax)-yPos(s.Median, yMax), colour(v, vi), esc(c), esc(v), s.Median, s.N)
			mid := x + barWidth*0.45
			fmt.Fprintf(&b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fh%.1fM%.1f %.1fh%.1f" stroke="%s" fill="none"/>`+"\n",
				mid, yPos(s.Min, yMax), yPos(s.Max, yMax), mid-4, yPos(s.Min, yMax), 8.0, mid-4, yPos(s.Max, yMax), 8.0, whiskerStroke)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`+"\n",
			marginLeft+(float64(gi)+0.5)*groupWidth, marginTop+innerHeight+20, fontStyle, esc(c))
	}
	legend(&b, vars, func(i int) string { return vars[i] })
	b.WriteString("</svg>\n")
	return b.String()
}

// timelineSVG draws each timeline (RSS sampled at a fixed interval) as a line
// over time. It returns "" when there is none.
func timelineSVG(tls []Result) string {
	var lines []Result
	top, end := 0.0, 0.0
	for _, tl := range tls {
		if len(tl.Samples) == 0 || tl.IntervalMS <= 0 {
			continue
		}
		lines = append(lines, tl)
		top = max(top, slices.Max(tl.Samples))
		end = max(end, float64(len(tl.Samples)-1)*tl.IntervalMS/1000)
	}
	if len(lines) == 0 {
		return ""
	}
	var b strings.Builder
	step, yMax := axis(top)
	header(&b, "multus-daemon RSS during the burst")
	yAxis(&b, step, yMax, lines[0].Unit)
	if end == 0 {
		end = 1
	}
	xStep, xMax := axis(end)
	for v := 0.0; v <= xMax+xStep/2; v += xStep {
		x := marginLeft + v/xMax*innerWidth
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`+"\n", x, marginTop+innerHeight+18, fontStyle, tick(v))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" %s>seconds</text>`+"\n", marginLeft+innerWidth/2, plotHeight-8, fontStyle)
	for i, tl := range lines {
		var pts []string
		for j, y := range tl.Samples {
			x := marginLeft + float64(j)*tl.IntervalMS/1000/xMax*innerWidth
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, yPos(y, yMax)))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"><title>%s</title></polyline>`+"\n",
			strings.Join(pts, " "), lineColour(i), esc(tl.Case))
	}
	legendColours(&b, len(lines), func(i int) string { return lines[i].Case }, lineColour)
	b.WriteString("</svg>\n")
	return b.String()
}

var lineColours = []string{"#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"}

func lineColour(i int) string { return lineColours[i%len(lineColours)] }

func header(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n",
		plotWidth, plotHeight, plotWidth, plotHeight)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%d" y="%d" font-family="sans-serif" font-size="%d">%s</text>`+"\n", marginLeft, marginTop-20, titleSize, esc(title))
}

// yAxis draws the horizontal grid lines with their labels, and the unit.
func yAxis(b *strings.Builder, step, yMax float64, unit string) {
	for v := 0.0; v <= yMax+step/2; v += step {
		y := yPos(v, yMax)
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", marginLeft, marginLeft+innerWidth, y, y, gridStroke)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`+"\n", marginLeft-6, y+4, fontStyle, tick(v))
	}
	fmt.Fprintf(b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle" %s>%s</text>`+"\n",
		marginTop+innerHeight/2, marginTop+innerHeight/2, fontStyle, esc(unit))
}

func legend(b *strings.Builder, names []string, label func(int) string) {
	legendColours(b, len(names), label, func(i int) string { return colour(names[i], i) })
}

func legendColours(b *strings.Builder, n int, label func(int) string, fill func(int) string) {
	x := plotWidth - marginRight + 16
	for i := range n {
		y := marginTop + i*legendRow
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x, y, legendSwatchSz, legendSwatchSz, fill(i))
		fmt.Fprintf(b, `<text x="%d" y="%d" %s>%s</text>`+"\n", x+legendSwatchSz+6, y+legendSwatchSz-1, fontStyle, esc(label(i)))
	}
}

// yPos maps a value to the plot's y coordinate.
func yPos(v, yMax float64) float64 {
	return marginTop + innerHeight - v/yMax*innerHeight
}

// axis returns a round tick step (1, 2 or 5 times a power of ten) giving about
// axisTicks ticks up to top, and the axis's end, the first tick at or above top.
func axis(top float64) (step, end float64) {
	if top <= 0 {
		return 1, 1
	}
	raw := top / axisTicks
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return step, math.Ceil(top/step) * step
}

// tick prints an axis label: round steps need no fixed decimals.
func tick(v float64) string { return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64) }

func esc(s string) string { return html.EscapeString(s) }
