"""The `aws-s3` input: objects of an S3 bucket, read line by line into events.

Two modes, chosen by the config as in Filebeat: `queue_url` reads the
objects named by S3 event notifications on an SQS queue (aws_s3_sqs.py);
`bucket_arn` or `non_aws_bucket_name` lists the bucket every
`bucket_list_interval` and reads the objects it has not read yet
(aws_s3_listing.py), which is what a Cisco-managed Umbrella bucket needs.
Both read an object with aws_s3_objects.ObjectReader, so events look the same.
boto3 is imported only here, when a config names this input.
"""

from __future__ import annotations

from forwarder.inputs.aws_s3_config import AwsS3Config, default_id, parse_config
from forwarder.inputs.base import Input, InputContext, InputType


def create(config: AwsS3Config, context: InputContext) -> Input:
    if config.queue_url:
        from forwarder.inputs.aws_s3_sqs import SqsInput

        return SqsInput(config, context)
    from forwarder.inputs.aws_s3_listing import BucketListingInput

    return BucketListingInput(config, context)


INPUT_TYPE = InputType("aws-s3", parse_config, create, default_id)
