function(src) { pipeline: { name: "edges-" + src } }
