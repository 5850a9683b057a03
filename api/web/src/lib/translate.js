// Vietnamese for the diagram editor's palette, context pad and lint button (bpmn-js `translate` service).
const VI = {
  'Activate hand tool': 'Công cụ kéo màn hình',
  'Activate lasso tool': 'Công cụ chọn vùng',
  'Activate create/remove space tool': 'Công cụ thêm/bớt khoảng trống',
  'Activate global connect tool': 'Công cụ nối',
  'Create start event': 'Tạo sự kiện bắt đầu',
  'Create intermediate/boundary event': 'Tạo sự kiện trung gian/biên',
  'Create end event': 'Tạo sự kiện kết thúc',
  'Create gateway': 'Tạo cổng rẽ nhánh',
  'Create task': 'Tạo bước',
  'Create expanded sub-process': 'Tạo quy trình con',
  'Create data object reference': 'Tạo đối tượng dữ liệu',
  'Create data store reference': 'Tạo kho dữ liệu',
  'Create pool/participant': 'Tạo pool (đơn vị tham gia)',
  'Create group': 'Tạo nhóm',
  'Append end event': 'Nối sự kiện kết thúc',
  'Append gateway': 'Nối cổng rẽ nhánh',
  'Append task': 'Nối bước',
  'Append intermediate/boundary event': 'Nối sự kiện trung gian',
  'Append timer intermediate catch event': 'Nối sự kiện hẹn giờ',
  'Add text annotation': 'Thêm ghi chú',
  'Change element': 'Đổi loại phần tử',
  'Change type': 'Đổi loại phần tử',
  Delete: 'Xóa',
  'Connect to other element': 'Nối tới phần tử khác',
  'Connect using association': 'Nối bằng liên kết',
  'Connect using sequence/message flow or association': 'Nối bằng luồng',
  'Add lane above': 'Thêm lane phía trên',
  'Add lane below': 'Thêm lane phía dưới',
  'Divide into two lanes': 'Chia thành hai lane',
  'Divide into three lanes': 'Chia thành ba lane',
  'Toggle linting overlays': 'Bật/tắt kiểm tra sơ đồ',
  '{errors} Errors, {warnings} Warnings': '{errors} lỗi, {warnings} cảnh báo',
  'No Issues': 'Không có lỗi',
  'Issues for child elements': 'Lỗi của các phần tử con',
  'User task': 'Bước người dùng (user task)',
  Task: 'Bước',
  'Exclusive gateway': 'Cổng loại trừ (XOR)',
  'Parallel gateway': 'Cổng song song',
  'End event': 'Sự kiện kết thúc',
  'Start event': 'Sự kiện bắt đầu',
};

function translate(template, replacements) {
  replacements = replacements || {};
  const text = VI[template] || template;
  return text.replace(/{([^}]+)}/g, (_, key) => (key in replacements ? replacements[key] : `{${key}}`));
}

export default { translate: ['value', translate] };
