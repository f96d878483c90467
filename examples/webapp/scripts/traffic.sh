#!/bin/sh
# Traffic hooks: a real fleet would drain or re-register with a load balancer here.
echo "$LIFECYCLE_EVENT for $APPLICATION_NAME/$DEPLOYMENT_GROUP_NAME (deployment $DEPLOYMENT_ID)"
