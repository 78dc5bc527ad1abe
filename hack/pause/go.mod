module specforge-k8s.local/pause

go 1.26
