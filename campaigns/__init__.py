"""One campaign's decisions across the stages: its parameters, the jobs it plans, the checks
its creatives pass, what it audits and the summary it reports. Plain functions over values;
`flows/` wires them into Prefect."""
