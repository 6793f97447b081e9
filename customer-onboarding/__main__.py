"""SESami customer onboarding: run `pulumi up` here, in your own AWS account (see README.md)."""

import pulumi
from onboarding import CustomerOnboarding, OnboardingArgs

onboarding = CustomerOnboarding("sesami", OnboardingArgs.from_config(pulumi.Config()))

pulumi.export("roleArn", onboarding.role_arn)
pulumi.export("externalId", onboarding.external_id)
pulumi.export("configurationSetName", onboarding.configuration_set_name)
pulumi.export("ruleArn", onboarding.rule_arn)
pulumi.export("deadLetterQueueUrl", onboarding.dead_letter_queue_url)
pulumi.export("deadLetterQueueArn", onboarding.dead_letter_queue_arn)
pulumi.export("region", onboarding.region)
pulumi.export("accountId", onboarding.account_id)
