// Builds chunk records for tests, and the Lambda and Firehose events that
// carry them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "filebuilder/base64.hpp"
#include "filebuilder/detail/json_escape.hpp"

namespace filebuilder::test {

inline std::string chunk(std::string_view endpoint, std::uint64_t partition, std::uint64_t count,
                         std::string_view bytes) {
  std::string record = "{\"putEndpoint\":";
  detail::append_json_string(record, endpoint);
  record += ",\"partition\":" + std::to_string(partition) +
            ",\"partitionCount\":" + std::to_string(count) + ",\"content\":\"";
  base64::encode_append(bytes, record);
  record += "\"}";
  return record;
}

/// One Kinesis record of a Lambda event as the Lambda service writes it (the
/// layout the fast path predicts, source/envelope.hpp): every key, in this
/// order, no spaces. `data` is the base64 text as it stands in the event.
inline std::string lambda_record(std::string_view sequence, std::string_view data,
                                 std::string_view partition_key = "96f6d314668c23de",
                                 std::string_view timestamp = "1700000000.0") {
  std::string item = R"({"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":")";
  item.append(partition_key).append(R"(","sequenceNumber":")").append(sequence);
  item.append(R"(","data":")").append(data).append(R"(","approximateArrivalTimestamp":)");
  item.append(timestamp).append(
      R"(},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000000:)");
  item.append(sequence).append(
      R"(","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::1:role/r",)"
      R"("awsRegion":"us-east-1","eventSourceARN":"arn:aws:kinesis:us-east-1:1:stream/s"})");
  return item;
}

/// One record of a Firehose transformation event; `data` as in lambda_record().
inline std::string firehose_record(std::string_view id, std::string_view data,
                                   std::string_view timestamp = "1700000000000") {
  std::string item = R"({"recordId":")";
  item.append(id).append(R"(","approximateArrivalTimestamp":)").append(timestamp);
  item.append(R"(,"data":")").append(data).append("\"}");
  return item;
}

/// A Lambda Kinesis event of these records (lambda_record()).
inline std::string lambda_event(const std::vector<std::string>& items) {
  std::string event = R"({"Records":[)";
  for (std::size_t i = 0; i < items.size(); ++i) event.append(i == 0 ? "" : ",").append(items[i]);
  return event + "]}";
}

/// A Firehose transformation event of these records (firehose_record()).
inline std::string firehose_event(const std::vector<std::string>& items) {
  std::string event = R"({"invocationId":"inv","deliveryStreamArn":"arn:x","records":[)";
  for (std::size_t i = 0; i < items.size(); ++i) event.append(i == 0 ? "" : ",").append(items[i]);
  return event + "]}";
}

}  // namespace filebuilder::test
